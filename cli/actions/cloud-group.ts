import { readFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import type { MqttClient } from 'mqtt'
import type { ConsumedMessage, ConsumeResult } from '../../bridge/consumer.js'
import { BridgeError } from '../../bridge/errors.js'
import { GroupStore, SeqState } from '../../bridge/group-store.js'
import { secretFileProblem } from '../../config/secret-files.js'
import type { CloudToolConfig } from '../cloud-config.js'
import {
  brokerOptions,
  type ConsumeOptions,
  connected,
  connectLimited,
  openEnvelopeConsumer,
  printable,
} from './cloud.js'

type GroupConfig = NonNullable<CloudToolConfig['group']>

/** `cloud consume` with `group:` in its config: one member of a group of consumers (docs/scaling.md). */
export interface GroupConsumeOptions extends ConsumeOptions {
  member?: string
}

interface Counters {
  delivered: number
  duplicates: number
  rejected: number
  adopted: number
}

/** Waits `ms`, or less when `signal` aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const aborted = () => {
      clearTimeout(timer)
      resolve()
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', aborted)
      resolve()
    }, ms)
    signal?.addEventListener('abort', aborted, { once: true })
  })
}

function noDelay(client: MqttClient): void {
  ;(client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true)
}

/**
 * One member of a consumer group. Each data message is verified, its gw-seq looked up in Redis,
 * written out, recorded, and only then acknowledged to the broker (MQTT 5 PUBACK, held back with
 * mqtt.js's customHandleAcks): a member killed at any point leaves its unacknowledged messages in
 * its persistent session, and the broker sends them again, to it when it returns, or to the member
 * that adopts its session when it does not.
 */
export async function consumeInGroup(config: CloudToolConfig, options: GroupConsumeOptions): Promise<void> {
  const group = config.group as GroupConfig
  const member =
    options.member ??
    group.member ??
    hostname()
      .replace(/[^A-Za-z0-9_-]/g, '-')
      .slice(0, 64)
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(member)) {
    throw new BridgeError('BRIDGE_ERR_CONSUMER_CONFIG', '--member: letters, digits, - and _ (1 to 64)')
  }
  let password: string | undefined
  if (group.redis.passwordFile) {
    const problem = await secretFileProblem(group.redis.passwordFile)
    if (problem) throw new BridgeError('BRIDGE_ERR_KEY_FILE', `group.redis.passwordFile: ${problem}`)
    password = (await readFile(group.redis.passwordFile, 'utf8')).trim()
  }
  const log = (record: Record<string, unknown>) =>
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), member, ...record })}\n`)
  // Adoption waits until this member's own heartbeat has had time to be seen again after Redis
  // was away (every member's heartbeat lapses while it is).
  let redisUpSince = Date.now()
  const store = new GroupStore({
    host: group.redis.host,
    port: group.redis.port,
    db: group.redis.db,
    ...(group.redis.username !== undefined && { username: group.redis.username }),
    ...(password !== undefined && { password }),
    keyPrefix: group.redis.keyPrefix,
    window: group.window,
    onConnection: (up, detail) => {
      redisUpSince = Date.now()
      log(up ? { event: 'redis_up', redis: detail } : { event: 'redis_down', reason: detail })
    },
  })
  try {
    await store.open()
  } catch (err) {
    throw new BridgeError(
      'BRIDGE_ERR_CONSUMER_CONFIG',
      `cannot reach Redis at ${group.redis.host}:${group.redis.port}: ${(err as Error).message}`,
    )
  }

  const consumer = await openEnvelopeConsumer(config, 0)
  const counters: Counters = { delivered: 0, duplicates: 0, rejected: 0, adopted: 0 }
  const limit = options.count === undefined ? Number.POSITIVE_INFINITY : Number(options.count)
  const stop = new AbortController()
  const out = (record: unknown) => process.stdout.write(`${JSON.stringify(record)}\n`)

  // ------------------------------------------------------------------ key bindings
  // Bindings come on a plain (not shared) subscription, retained ones included, so every member
  // learns every gateway's key; each verified one is also kept in Redis for members that start later.
  const bindingWaiters = new Map<string, Array<() => void>>()
  const learnBinding = async (bytes: Buffer, save: boolean): Promise<void> => {
    const result = await consumer.binding(bytes)
    if (!result.ok || result.kid === undefined) {
      if (save) {
        counters.rejected++
        out({ rejected: `binding_${result.failure}` })
      }
      return
    }
    if (save) await store.saveBinding(result.kid, bytes)
    for (const wake of bindingWaiters.get(result.kid) ?? []) wake()
    bindingWaiters.delete(result.kid)
  }
  const waitForBinding = async (kid: string): Promise<void> => {
    const deadline = Date.now() + group.bindingWaitSeconds * 1000
    while (Date.now() < deadline && !stop.signal.aborted) {
      // Listening before looking, so a binding learnt in between wakes this wait.
      let wake: () => void = () => undefined
      const woken = new Promise<void>((resolve) => {
        wake = resolve
        const list = bindingWaiters.get(kid) ?? []
        list.push(resolve)
        bindingWaiters.set(kid, list)
      })
      const kept = await store.loadBinding(kid)
      if (kept) {
        await learnBinding(kept, false)
        wake()
        return
      }
      const timer = setTimeout(wake, 500)
      await woken
      clearTimeout(timer)
      if (consumer.knows(kid)) return
    }
  }

  const base = {
    ...(await brokerOptions(config)),
    // A message waiting for Redis holds the connection's incoming packets, PINGRESP included:
    // a long keep-alive lets a Redis restart pass without the broker link being dropped for it.
    keepalive: 120,
  }
  const bindings = connectLimited({
    ...base,
    clientId: `${group.name}-${member}-bindings`,
    clean: true,
    reconnectPeriod: 1000,
  })
  bindings.on('connect', () => noDelay(bindings))
  await connected(bindings, config)
  bindings.on('message', (_topic, payload) => {
    learnBinding(payload, true).catch((err: Error) => log({ event: 'binding_error', reason: err.message }))
  })
  await bindings.subscribeAsync(`${config.controlPrefix}/+/binding`, { qos: 1 })

  // ------------------------------------------------------------------ messages
  const deliver = async (m: ConsumedMessage, lane: string): Promise<void> => {
    const record = {
      kind: m.kind,
      gateway: m.gatewayId,
      device: m.deviceId,
      topic: m.topic,
      cloudTopic: m.cloudTopic,
      seq: m.seq,
      timestamp: m.timestamp,
      protection: m.protection,
    }
    if (m.kind !== 'message') {
      // Control messages (status, health) carry no gw-seq: printed as they come.
      out({ ...record, ...printable(m.body), member, session: lane })
      return
    }
    let state: SeqState
    if (group.output === 'stream') {
      state = await store.deliverToStream(
        group.stream,
        m,
        m.seq,
        [
          ['gateway', m.gatewayId],
          ['device', m.deviceId ?? ''],
          ['topic', m.topic],
          ['cloudTopic', m.cloudTopic],
          ['seq', String(m.seq)],
          ['timestamp', String(m.timestamp)],
          ['protection', m.protection],
          ['member', member],
          ['session', lane],
          ['payload', m.body],
        ],
        options.showDuplicates === true,
      )
    } else {
      // Looked up, written, then recorded: a member killed between the two prints it again
      // without the flag (at least once); the stream output has no such gap.
      state = await store.seqState(m, m.seq)
      if (state === SeqState.new || options.showDuplicates) {
        out({
          ...record,
          ...(state !== SeqState.new && { duplicate: true }),
          ...printable(m.body),
          member,
          session: lane,
        })
      }
      if (state === SeqState.new) await store.recordSeq(m, m.seq)
    }
    if (state === SeqState.new) counters.delivered++
    else counters.duplicates++
  }

  const handle = async (topic: string, payload: Buffer, lane: string): Promise<void> => {
    let result: ConsumeResult = await consumer.message(topic, payload, false)
    if (result.ok === 'pending') {
      await waitForBinding(result.kid)
      result = await consumer.message(topic, payload, false)
    }
    if (result.ok === true) {
      await deliver(result.message, lane)
      return
    }
    counters.rejected++
    out({
      rejected: result.ok === 'pending' ? 'no_key_binding' : result.failure,
      cloudTopic: result.cloudTopic,
      ...(result.kid && { kid: result.kid }),
      member,
      session: lane,
    })
  }

  let finish: () => void = () => undefined
  const done = new Promise<void>((resolve) => {
    finish = resolve
  })

  /**
   * A connection holding a member's session: this member's own, or an adopted one. Each message
   * is acknowledged once it is delivered; a message still waiting when the connection goes is not
   * acknowledged at all (the broker sends it again).
   */
  const lanes = new Set<MqttClient>()
  const openLane = async (
    name: string,
    adopted: boolean,
  ): Promise<{ client: MqttClient; session: boolean }> => {
    let generation = 0
    const client = connectLimited({
      ...base,
      clientId: `${group.name}-${name}`,
      clean: false,
      properties: {
        ...base.properties,
        sessionExpiryInterval: group.sessionExpirySeconds,
        receiveMaximum: 64,
      },
      // An adopted session is given back when its member returns: the broker then closes this
      // connection (session taken over), and it does not come back.
      reconnectPeriod: adopted ? 0 : 1000,
      customHandleAcks: (topic, payload, _packet, ack) => {
        const mine = generation
        const attempt = async (): Promise<void> => {
          // Redis commands wait while it is away; anything else that fails is tried again, the
          // message unacknowledged meanwhile, until it goes through or the connection does.
          for (let delay = 200; ; delay = Math.min(delay * 2, 5000)) {
            try {
              await handle(topic, payload, name)
              return
            } catch (err) {
              log({ event: 'delivery_error', lane: name, reason: (err as Error).message })
              await sleep(delay, stop.signal)
              if (mine !== generation || stop.signal.aborted) return
            }
          }
        }
        void attempt().then(() => {
          if (mine !== generation || stop.signal.aborted) return
          ack(0)
          if (counters.delivered >= limit) finish()
        })
      },
    })
    client.on('close', () => {
      generation++
    })
    // PUBACKs are small writes, one per message: without this, Nagle holds each behind the last.
    client.on('connect', () => noDelay(client))
    const session = await connected(client, config)
    lanes.add(client)
    client.on('end', () => lanes.delete(client))
    return { client, session }
  }

  // ------------------------------------------------------------------ heartbeats and adoption
  const membersKey = `${group.redis.keyPrefix}members:${group.name}`
  const beatKey = (name: string) => `${group.redis.keyPrefix}member:${group.name}:${name}`
  const ttl = group.adoptAfterSeconds * 1000
  const adopting = new Map<string, MqttClient>()
  const lockKey = (name: string) => `${group.redis.keyPrefix}adopt:${group.name}:${name}`
  const beat = async () => {
    await store.redis.set(beatKey(member), `${hostname()} ${process.pid}`, 'PX', ttl)
    await store.redis.hset(membersKey, member, group.connections)
  }
  // The heartbeat comes first: a member that returns is seen alive before it takes its sessions
  // back, so the member that adopted them lets them go instead of taking them again.
  await beat()
  const beating = setInterval(() => {
    beat().catch((err: Error) => log({ event: 'heartbeat_error', reason: err.message }))
  }, 1000)

  // This member's connections, each its own session in the shared subscription: mqtt.js handles a
  // connection's messages one at a time (a PUBACK held back holds the next), so several connections
  // let one member have as many messages in hand while it waits for Redis.
  const sessionsOf = (name: string, count: number) =>
    Array.from({ length: count }, (_, k) => `${name}.${k + 1}`)
  const filters = [
    ...config.subscribe,
    `${config.controlPrefix}/+/status`,
    `${config.controlPrefix}/+/health`,
  ]
  const shared = filters.map((f) => `$share/${group.name}/${f}`)
  const own = await Promise.all(sessionsOf(member, group.connections).map((name) => openLane(name, false)))
  await Promise.all(own.map((lane) => lane.client.subscribeAsync(shared, { qos: 1 })))

  // ------------------------------------------------------------------ adoption
  const adoptLoop = async () => {
    while (!stop.signal.aborted) {
      await sleep(1000, stop.signal)
      if (stop.signal.aborted) break
      try {
        for (const name of adopting.keys()) await store.redis.set(lockKey(name), member, 'PX', ttl)
        if (Date.now() - redisUpSince < ttl) continue
        const registry = await store.redis.hgetall(membersKey)
        for (const [other, count] of Object.entries(registry)) {
          if (other === member) continue
          const alive = (await store.redis.exists(beatKey(other))) === 1
          let gone = 0
          const names = sessionsOf(other, Math.min(Math.max(Number(count) || 1, 1), 64))
          for (const name of names) {
            const lane = adopting.get(name)
            if (alive) {
              if (lane) {
                // Its member is back: its connection takes the session over (this one is closed by
                // the broker); closing it here too is for a member that comes back elsewhere.
                adopting.delete(name)
                lane.end(true)
                log({ event: 'session_returned', session: name })
              }
              continue
            }
            if (lane) continue
            if ((await store.redis.set(lockKey(name), member, 'PX', ttl, 'NX')) !== 'OK') continue
            const adopted = await openLane(name, true)
            if (!adopted.session) {
              // Its session has expired: nothing is waiting in it.
              adopted.client.end(true)
              gone++
              continue
            }
            counters.adopted++
            adopting.set(name, adopted.client)
            adopted.client.on('close', () => {
              if (adopting.get(name) === adopted.client) adopting.delete(name)
            })
            log({ event: 'session_adopted', session: name })
          }
          if (gone === names.length) {
            await store.redis.hdel(membersKey, other)
            log({ event: 'member_gone', other })
          }
        }
      } catch (err) {
        redisUpSince = Date.now()
        log({ event: 'heartbeat_error', reason: (err as Error).message })
      }
    }
  }
  const adoption = adoptLoop()

  log({
    event: 'consuming',
    group: group.name,
    filters,
    broker: `${config.broker.host}:${config.broker.port}`,
    output: group.output,
    connections: group.connections,
    sessions: own.map((lane) => (lane.session ? 'resumed' : 'new')),
  })
  const timer = options.timeout === undefined ? undefined : setTimeout(finish, Number(options.timeout) * 1000)
  process.once('SIGINT', finish)
  process.once('SIGTERM', finish)
  await done
  if (timer) clearTimeout(timer)
  stop.abort()
  clearInterval(beating)
  await adoption
  // Leaving: the broker stops sending this member its share, and what is already in its session
  // (messages still being handled here are not acknowledged) is drained by a member that adopts it
  // once the heartbeat is gone, or by this one when it comes back.
  await Promise.all(own.map((lane) => lane.client.unsubscribeAsync(shared).catch(() => undefined)))
  await Promise.all([...lanes].map((c) => c.endAsync(true)))
  await bindings.endAsync(true)
  await store.redis.del(beatKey(member), ...[...adopting.keys()].map(lockKey)).catch(() => undefined)
  await store.close()
  process.stderr.write(
    `member ${member} of ${group.name}: ${counters.delivered} message(s) delivered, ${counters.duplicates} duplicate(s), ${counters.rejected} rejected, ${counters.adopted} session(s) adopted\n`,
  )
  if (counters.rejected > 0) process.exitCode = 1
}
