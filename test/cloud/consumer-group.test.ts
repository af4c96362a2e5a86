/**
 * Issue 18: `edge-gateway cloud consume` as three members of one group, against the fleet
 * simulator (bench/lib/fleet.mjs: simulated gateways with their own keys, bindings and certificates,
 * re-sending and reordering as a gateway does after a crash), a real mosquitto (MQTT 5 shared
 * subscriptions, client certificates required) and a real redis-server, both on loopback ports:
 * - one member is killed -9 mid-run and stays away: another member adopts its session, and the
 *   messages that were waiting in it arrive; then it comes back and takes its session again;
 * - Redis is killed -9 mid-run and started again on its append-only file: the members pause and go on;
 * - every message is verified and written to the output stream exactly once; every re-send and every
 *   redelivery the broker makes after the kill is there flagged duplicate=1; a tampered message is refused.
 */
import type { ChildProcess } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  DATA_PREFIX,
  type Fleet,
  makeFleet,
  type SimulateResult,
  simulateFleet,
  startRedis,
  writeConsumerConfig,
} from '../../bench/lib/fleet.mjs'
import { BodyProtection, EnvelopeKind, signEnvelope } from '../../bridge/envelope.js'
import { runCli, spawnCli } from '../cli/run-cli.js'
import { findBinary } from '../helpers/binaries.js'
import { CloudMosquitto } from '../helpers/mosquitto.js'
import { freePort } from '../helpers/ports.js'
import { exitOf, hasExited, onLines, signalPid, terminate } from '../helpers/processes.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { waitUntil } from '../integration/harness.js'

const GATEWAYS = 20
const PER_GATEWAY = 150
const RESEND_EVERY = 25
const STREAM = 'fleet:messages'

interface Member {
  name: string
  child: ChildProcess
  stdout: string[]
  stderr: string[]
}

describe('a group of three cloud consumers (shared subscription, state in Redis)', () => {
  let dir: string
  let fleet: Fleet
  let broker: CloudMosquitto
  let redisPort: number
  let redisChild: ChildProcess
  let config: string
  let redis: Redis
  const members = new Map<string, Member>()
  const ended: Member[] = []

  const startMember = async (name: string): Promise<Member> => {
    const child = spawnCli(['cloud', 'consume', '-c', config, '--member', name, '--show-duplicates'])
    const m: Member = { name, child, stdout: [], stderr: [] }
    onLines(child.stdout, (l) => m.stdout.push(l))
    onLines(child.stderr, (l) => m.stderr.push(l))
    members.set(name, m)
    await waitUntil(
      () => m.stderr.some((l) => l.includes('"event":"consuming"')) || hasExited(child),
      20_000,
      `member ${name} consuming`,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; its log:\n${m.stderr.join('\n')}`)
    })
    expect(hasExited(child), `member ${name} exited early: ${m.stderr.join('\n')}`).toBe(false)
    return m
  }

  beforeAll(async () => {
    await findBinary('redis-server', 'apt-get install redis-server')
    dir = await makeTempDir('eg-group-')
    fleet = await makeFleet(join(dir, 'pki'), GATEWAYS)
    broker = await CloudMosquitto.start({
      dir: dir,
      caFile: fleet.caFile,
      certFile: fleet.serverCertFile,
      keyFile: fleet.serverKeyFile,
      extraConfig: ['max_queued_messages 0'],
    })
    redisPort = await freePort()
    redisChild = await startRedis({ dir: join(dir, 'redis'), port: redisPort })
    redis = new Redis({ host: '127.0.0.1', port: redisPort, maxRetriesPerRequest: null, lazyConnect: true })
    redis.on('error', () => undefined)
    await redis.connect()
    config = await writeConsumerConfig(dir, 'group', {
      fleet,
      brokerPort: broker.port,
      redisPort,
      group: 'fleet',
      output: 'stream',
      stream: STREAM,
    })
  }, 120_000)

  afterAll(async () => {
    for (const m of members.values()) await terminate(m.child)
    redis?.disconnect()
    if (redisChild) await terminate(redisChild)
    await broker?.stop()
    if (dir) await removeDir(dir)
  })

  it('verifies every message once, flags every duplicate and loses none across a member kill -9 and a Redis restart', async () => {
    for (const name of ['m1', 'm2', 'm3']) await startMember(name)

    // 20 gateways x 150 readings at 250/s (about 13 s), every 25th sent again at the end, each
    // gateway's readings shuffled in windows of 8.
    let simulated: SimulateResult | undefined
    const simulation = simulateFleet({
      fleet,
      brokerPort: broker.port,
      perGateway: PER_GATEWAY,
      connections: 4,
      rate: 250,
      resendEvery: RESEND_EVERY,
      reorder: 8,
    }).then((r) => {
      simulated = r
    })
    const streamLength = async () => Number(await redis.xlen(STREAM))
    await new Promise((r) => setTimeout(r, 1500))
    expect(await streamLength(), 'messages flow before the kill').toBeGreaterThan(0)

    // m2 killed -9, not restarted for now: its session's share waits for an adopter.
    const m2 = members.get('m2') as Member
    signalPid(m2.child.pid, 'SIGKILL')
    await exitOf(m2.child)
    ended.push(m2)
    members.delete('m2')

    // Redis killed -9 and started again on its append-only file (fsynced on every write).
    await new Promise((r) => setTimeout(r, 1500))
    signalPid(redisChild.pid, 'SIGKILL')
    await exitOf(redisChild)
    await new Promise((r) => setTimeout(r, 1500))
    redisChild = await startRedis({ dir: join(dir, 'redis'), port: redisPort })

    // Another member adopts m2's session once its heartbeat is gone (3 s) and Redis has been back that long.
    const adopters = () =>
      [...members.values()].filter((m) => m.stderr.some((l) => l.includes('session_adopted')))
    await waitUntil(() => adopters().length > 0, 30_000, "a member adopting m2's session")
    expect(simulated, 'the simulator still publishing when m2 returns').toBeUndefined()

    // m2 comes back and takes its session over from the adopter, while the simulator publishes.
    const returned = Date.now()
    await startMember('m2')
    await simulation
    const sim = simulated as unknown as SimulateResult
    expect(sim.unique).toBe(GATEWAYS * PER_GATEWAY)
    expect(sim.resent).toBe(Math.floor((GATEWAYS * PER_GATEWAY) / RESEND_EVERY))

    const entries = async () => {
      const all: Array<Record<string, string>> = []
      let from = '-'
      for (;;) {
        const batch = (await redis.xrange(STREAM, from, '+', 'COUNT', 1000)) as Array<[string, string[]]>
        for (const [id, fields] of batch) {
          const record: Record<string, string> = { id }
          for (let i = 0; i < fields.length; i += 2) record[fields[i] as string] = fields[i + 1] as string
          all.push(record)
        }
        if (batch.length < 1000) return all
        from = `(${batch[batch.length - 1]?.[0]}`
      }
    }
    const unique = async () => (await entries()).filter((e) => e.duplicate !== '1')
    const deadline = Date.now() + 60_000
    let count = (await unique()).length
    while (count < sim.unique && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500))
      count = (await unique()).length
    }
    const all = await entries()
    const firsts = all.filter((e) => e.duplicate !== '1')
    const duplicates = all.filter((e) => e.duplicate === '1')
    const keys = firsts.map((e) => `${e.gateway}/${e.seq}`)
    expect(count, 'every message the simulator published reached the stream').toBe(sim.unique)
    expect(new Set(keys).size, 'none written twice as new').toBe(keys.length)
    for (const g of fleet.gateways) {
      for (let seq = 1; seq <= PER_GATEWAY; seq++) {
        if (!keys.includes(`${g.id}/${seq}`)) throw new Error(`${g.id} gw-seq ${seq} is missing`)
      }
    }
    expect(duplicates.length, 'every re-send flagged duplicate').toBeGreaterThanOrEqual(sim.resent)
    // Every member wrote some (the shared subscription spread them); messages of m2's session were
    // written by its adopter while it was away, and by m2 again once it was back.
    const sessions = new Set(firsts.map((e) => `${e.session?.split('.')[0]} by ${e.member}`))
    const adopter = adopters()[0]?.name as string
    expect(sessions).toContain('m1 by m1')
    expect(sessions).toContain('m3 by m3')
    expect(sessions).toContain(`m2 by ${adopter}`)
    expect(
      firsts.some(
        (e) => e.session?.startsWith('m2.') && e.member === 'm2' && Number(e.id?.split('-')[0]) > returned,
      ),
      'm2 took its session back',
    ).toBe(true)

    // The members that lived through Redis's restart paused for it and went on (their logs say so);
    // none refused anything.
    for (const name of ['m1', 'm3']) {
      const m = members.get(name) as Member
      expect(
        m.stderr.some((l) => l.includes('redis_down')),
        `${name} saw Redis go`,
      ).toBe(true)
      expect(m.stderr.filter((l) => l.includes('redis_up')).length, `${name} saw Redis back`).toBeGreaterThan(
        1,
      )
    }
    for (const m of [...members.values(), ...ended]) {
      expect(m.stdout.filter((l) => l.includes('"rejected"'))).toEqual([])
    }
    for (const m of [...members.values()]) {
      const exit = await terminate(m.child)
      expect(exit.code, `${m.name}: ${m.stderr.slice(-3).join('\n')}`).toBe(0)
      members.delete(m.name)
    }
  }, 180_000)

  it('refuses a tampered message and delivers the next good one', async () => {
    const m = await startMember('m9')
    const gw = fleet.gateways[0] as Fleet['gateways'][number]
    const cloudTopic = `${DATA_PREFIX}/${gw.id}/sensors/temp`
    const envelope = (seq: number) =>
      signEnvelope(gw.key, gw.kid, cloudTopic, {
        kind: EnvelopeKind.message,
        gatewayId: gw.id,
        deviceId: 'dev-0',
        topic: 'sensors/temp',
        seq,
        timestamp: Date.now(),
        protection: BodyProtection.plain,
        body: Buffer.from('{"t":21.5}'),
      })
    const tampered = envelope(PER_GATEWAY + 1)
    const at = tampered.indexOf(Buffer.from('21.5'))
    tampered[at] = '3'.charCodeAt(0)
    const [ca, cert, key] = await Promise.all(
      [fleet.caFile, fleet.simulatorCertFile, fleet.simulatorKeyFile].map((f) => readFile(f)),
    )
    const client = await mqtt.connectAsync({
      protocol: 'mqtts',
      host: '127.0.0.1',
      port: broker.port,
      ca,
      cert,
      key,
      protocolVersion: 5,
      reconnectPeriod: 0,
    })
    await client.publishAsync(cloudTopic, tampered, { qos: 1 })
    await client.publishAsync(cloudTopic, envelope(PER_GATEWAY + 2), { qos: 1 })
    await client.endAsync()
    const last = async () => {
      const [entry] = (await redis.xrevrange(STREAM, '+', '-', 'COUNT', 1)) as Array<[string, string[]]>
      const fields = entry?.[1] ?? []
      return fields[fields.indexOf('seq') + 1]
    }
    const deadline = Date.now() + 20_000
    while ((await last()) !== String(PER_GATEWAY + 2) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100))
    }
    expect(await last()).toBe(String(PER_GATEWAY + 2))
    expect(m.stdout.map((l) => JSON.parse(l) as { rejected?: string; cloudTopic?: string })).toEqual([
      expect.objectContaining({ rejected: 'bad_signature', cloudTopic }),
    ])
    const fields = (await redis.xrange(STREAM, '-', '+')) as Array<[string, string[]]>
    expect(fields.filter(([, f]) => f.includes(String(PER_GATEWAY + 1)))).toEqual([])
    // A member that refused anything exits 1, as `cloud consume` does.
    expect((await terminate(m.child)).code).toBe(1)
    members.delete('m9')
  }, 60_000)

  it('says what is wrong: --member without a group, Redis not reachable', async () => {
    const single = await writeConsumerConfig(dir, 'single', { fleet, brokerPort: broker.port })
    const noGroup = await runCli(['cloud', 'consume', '-c', single, '--member', 'm1', '--timeout', '1'])
    expect(noGroup.code).not.toBe(0)
    expect(noGroup.stderr).toContain('--member needs a group: section')
    const nowhere = await writeConsumerConfig(dir, 'nowhere', {
      fleet,
      brokerPort: broker.port,
      redisPort: await freePort(),
      group: 'fleet',
    })
    const noRedis = await runCli(['cloud', 'consume', '-c', nowhere, '--member', 'm1'])
    expect(noRedis.code).not.toBe(0)
    expect(noRedis.stderr).toMatch(/cannot reach Redis at 127\.0\.0\.1:\d+: connect ECONNREFUSED/)
  }, 60_000)
})
