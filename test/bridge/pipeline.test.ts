import { createPublicKey, generateKeyPairSync } from 'node:crypto'
import { Writable } from 'node:stream'
import type { MqttClient } from 'mqtt'
import { BehaviorSubject, type Subscription } from 'rxjs'
import { afterEach, describe, expect, it } from 'vitest'
import { CloudProtector } from '../../bridge/cloud-protector.js'
import { CloudRefusal, CloudSession, type OutboundMessage, Unsendable } from '../../bridge/cloud-session.js'
import { readDeadLetters } from '../../bridge/dead-letter/inspect.js'
import { DeadLetterStore } from '../../bridge/dead-letter/store.js'
import { BodyProtection, EnvelopeKind, verifyEnvelope } from '../../bridge/envelope.js'
import type { Settled } from '../../bridge/operators/forward.js'
import { uplinkPipeline } from '../../bridge/pipeline.js'
import { MemoryQueue } from '../../bridge/queue/memory-queue.js'
import { createLogger } from '../../core/logger.js'
import { Metrics } from '../../core/metrics.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { message, until } from './queue/contract.js'

const GATEWAY_ID = 'gw-1'
const MAPPINGS = [{ local: 'devices/', cloud: 'site/gw-1/devices/', mode: 'client-to-broker' as const }]
const SIGNING_KEY = generateKeyPairSync('ed25519').privateKey
const PROTECTOR = new CloudProtector(GATEWAY_ID, SIGNING_KEY, new Map())
const verifyingKey = { key: createPublicKey(SIGNING_KEY), gatewayId: GATEWAY_ID }
const DELIVERED = 'uplink_delivered_total'
const REFUSED = 'uplink_dead_letter_total{reason="cloud_refused"}'
const INTERRUPTED = 'uplink_publish_interrupted_total'
const NO_MAPPING = 'uplink_dead_letter_total{reason="no_mapping"}'
const PROTECTION_CHANGED = 'uplink_dead_letter_total{reason="protection_changed"}'
const UNSENDABLE = 'uplink_dead_letter_total{reason="unsendable"}'
const FAILED_FULL = 'uplink_dead_letter_failed_total{reason="full"}'

interface PendingPublish {
  message: OutboundMessage
  resolve: () => void
  reject: (err: unknown) => void
}

/**
 * Stands in for a CloudSession: records each publish and lets the test settle it. What a
 * session can carry is the real CloudSession's check, with the broker's Maximum Packet Size
 * given here.
 */
class FakeSession {
  readonly calls: PendingPublish[] = []
  pending = 0
  maxPending = 0
  private readonly limits: CloudSession

  constructor(maxPacketBytes?: number) {
    this.limits = new CloudSession(undefined as unknown as MqttClient, true, maxPacketBytes)
  }

  unsendable(message: OutboundMessage): string | undefined {
    return this.limits.unsendable(message)
  }

  /** What the pipeline calls (CloudSession.send): `done` runs when the test settles the call. */
  send(message: OutboundMessage, done: (err?: Error) => void): void {
    this.pending++
    this.maxPending = Math.max(this.maxPending, this.pending)
    this.calls.push({
      message,
      resolve: () => {
        this.pending--
        done()
      },
      reject: (err) => {
        this.pending--
        done(err as Error)
      },
    })
  }

  /** The gw-seq of every publish so far, in call order. */
  get seqs(): number[] {
    return this.calls.map((c) => Number(c.message.userProperties['gw-seq']))
  }

  asSession(): CloudSession {
    return this as unknown as CloudSession
  }
}

/** Lets promise callbacks and the rxjs work they trigger run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve))

const discard = new Writable({
  write(_chunk, _encoding, done) {
    done()
  },
})

async function harness(
  inflight: number,
  options: { capacity?: number; mappings?: typeof MAPPINGS; deadLetterQuota?: number } = {},
) {
  const queue = new MemoryQueue(options.capacity ?? 100)
  const sessions = new BehaviorSubject<CloudSession | null>(null)
  const metrics = new Metrics()
  const settled: Settled[] = []
  const errors: unknown[] = []
  const dir = await makeTempDir('edge-gw-pipeline-')
  dirs.push(dir)
  const logger = createLogger({ level: 'silent', destination: discard })
  const { store: deadLetters } = await DeadLetterStore.open(dir, {
    quotaBytes: options.deadLetterQuota ?? 1024 * 1024,
    logger,
    requestPollMs: 3_600_000,
  })
  stores.push(deadLetters)
  const subscription = uplinkPipeline({
    queue,
    deadLetters,
    sessions,
    mappings: options.mappings ?? MAPPINGS,
    gatewayId: GATEWAY_ID,
    inflight,
    protector: PROTECTOR,
    logger,
    metrics,
  }).subscribe({ next: (s) => settled.push(s), error: (err) => errors.push(err) })
  running.push(subscription)
  const append = (from: number, to: number) => {
    // MemoryQueue does its work inside append; the promise only reports it.
    for (let n = from; n <= to; n++) void queue.append(message(n))
  }
  const queuedSeqs = () => {
    const seqs: number[] = []
    queue
      .read()
      .subscribe((e) => seqs.push(e.seq))
      .unsubscribe()
    return seqs
  }
  const letters = () => readDeadLetters(dir)
  return { queue, deadLetters, sessions, metrics, settled, errors, append, queuedSeqs, letters }
}

const running: Subscription[] = []
const stores: DeadLetterStore[] = []
const dirs: string[] = []
afterEach(async () => {
  for (const s of running.splice(0)) s.unsubscribe()
  for (const store of stores.splice(0)) await store.close()
  for (const dir of dirs.splice(0)) await removeDir(dir)
})

describe('uplinkPipeline', () => {
  it('publishes nothing while there is no session', async () => {
    const h = await harness(10)
    h.append(1, 3)
    await settle()
    h.sessions.next(null)
    h.append(4, 4)
    await settle()
    expect(h.queue.size).toBe(4)
    expect(h.settled).toEqual([])
    expect(h.metrics.snapshot()).toEqual({})
  })

  it('publishes queued entries in order on a session, with the mapped topic and the gateway user properties', async () => {
    const h = await harness(10)
    h.append(1, 3)
    const session = new FakeSession()
    h.sessions.next(session.asSession())
    expect(session.calls.map(({ message: { payload: _, ...rest } }) => rest)).toEqual(
      [1, 2, 3].map((n) => ({
        topic: `site/gw-1/${message(n).topic}`,
        retain: message(n).retain,
        userProperties: { 'gw-seq': String(n), 'gw-id': GATEWAY_ID, 'gw-device': message(n).deviceId },
      })),
    )
    // The payload is the gateway's signed envelope around the device payload.
    for (const [i, call] of session.calls.entries()) {
      const n = i + 1
      const verified = verifyEnvelope(() => verifyingKey, call.message.topic, call.message.payload)
      if ('failure' in verified) throw new Error(`envelope ${n} does not verify: ${verified.failure}`)
      expect(verified.envelope).toEqual({
        kind: EnvelopeKind.message,
        gatewayId: GATEWAY_ID,
        deviceId: message(n).deviceId,
        topic: message(n).topic,
        seq: n,
        timestamp: message(n).receivedAt,
        protection: BodyProtection.plain,
        body: message(n).payload,
      })
    }
    expect(session.calls[0]!.message.topic).toBe('site/gw-1/devices/dev-1/m/1')
    // Appends on a live session go out straight away, after the backlog.
    h.append(4, 5)
    expect(session.seqs).toEqual([1, 2, 3, 4, 5])
    expect(h.errors).toEqual([])
  })

  it('never sends an entry no mapping covers any more: it is held as a dead letter, counted, and left the queue', async () => {
    const h = await harness(10)
    h.append(1, 1)
    void h.queue.append({ ...message(2), topic: 'elsewhere/x' })
    h.append(3, 3)
    const session = new FakeSession()
    h.sessions.next(session.asSession())
    // Nothing on the raw LAN topic; the entries around it go out.
    expect(session.calls.map((c) => c.message.topic)).toEqual([
      `site/gw-1/${message(1).topic}`,
      `site/gw-1/${message(3).topic}`,
    ])
    await until(() => h.metrics.get(NO_MAPPING) === 1, 'the dead letter')
    expect(h.queuedSeqs()).toEqual([1, 3])
    expect(await h.letters()).toEqual([
      expect.objectContaining({
        seq: 2,
        reason: 'no_mapping',
        state: 'held',
        device: message(2).deviceId,
        topic: 'elsewhere/x',
        payloadBytes: message(2).payload.length,
      }),
    ])
    expect(h.deadLetters.stats()).toMatchObject({ depth: 1, retrying: 0, byReason: { no_mapping: 1 } })
    // A later session does not see it again.
    h.sessions.next(null)
    const next = new FakeSession()
    h.sessions.next(next.asSession())
    expect(next.seqs).toEqual([1, 3])
    expect(h.errors).toEqual([])
  })

  it('never sends an entry with less protection than it was accepted under: HPKE-sealed then plain is a dead letter', async () => {
    const h = await harness(10)
    void h.queue.append({ ...message(1), protection: BodyProtection.hpke })
    void h.queue.append({ ...message(2), protection: BodyProtection.plain })
    void h.queue.append({ ...message(3), protection: BodyProtection.device })
    const session = new FakeSession()
    h.sessions.next(session.asSession())
    // The mapping gives plain now: only the message accepted as plain goes.
    expect(session.seqs).toEqual([2])
    await until(() => h.metrics.get(PROTECTION_CHANGED) === 2, 'two dead letters')
    expect((await h.letters()).map((l) => [l.seq, l.reason, l.detail])).toEqual([
      [
        1,
        'protection_changed',
        'accepted as HPKE-sealed; the mapping that covers it now gives plain (signed, not sealed)',
      ],
      [
        3,
        'protection_changed',
        "accepted as the device's own sealed bytes (end-to-end); the mapping that covers it now gives plain (signed, not sealed)",
      ],
    ])
  })

  it("sets aside what the cloud broker's Maximum Packet Size cannot carry, and goes on with the next", async () => {
    const h = await harness(1)
    h.append(1, 1)
    void h.queue.append({ ...message(2), payload: Buffer.alloc(4000, 1) })
    h.append(3, 3)
    const session = new FakeSession(2000)
    h.sessions.next(session.asSession())
    expect(session.seqs).toEqual([1])
    session.calls[0]!.resolve()
    await until(() => session.seqs.length === 2, 'the next publish')
    expect(session.seqs).toEqual([1, 3])
    await until(() => h.metrics.get(UNSENDABLE) === 1, 'the dead letter')
    const [letter] = await h.letters()
    expect(letter).toMatchObject({ seq: 2, reason: 'unsendable', payloadBytes: 4000 })
    expect(letter!.detail).toMatch(
      /^its PUBLISH would be \d+ bytes, over the cloud broker's Maximum Packet Size of 2000$/,
    )
  })

  it('sets aside an entry the MQTT client refuses to write, without wedging the ones after it', async () => {
    const h = await harness(1)
    h.append(1, 2)
    const session = new FakeSession()
    h.sessions.next(session.asSession())
    session.calls[0]!.reject(new Unsendable('the MQTT client refused to write it: bad chunk'))
    await until(() => session.seqs.length === 2, 'the next publish')
    session.calls[1]!.resolve()
    await until(() => h.metrics.get(UNSENDABLE) === 1 && h.queue.size === 0, 'the dead letter')
    expect((await h.letters()).map((l) => [l.seq, l.reason, l.detail])).toEqual([
      [1, 'unsendable', 'the MQTT client refused to write it: bad chunk'],
    ])
    expect(h.metrics.get(DELIVERED)).toBe(1)
  })

  it('sends a retried dead letter with its gw-seq, once, and forgets it when the cloud acknowledged it', async () => {
    const h = await harness(10, { mappings: [] })
    h.append(1, 2)
    const first = new FakeSession()
    h.sessions.next(first.asSession())
    await until(() => h.metrics.get(NO_MAPPING) === 2, 'two dead letters')
    expect(first.calls).toEqual([])
    expect(h.queue.size).toBe(0)
    // Still unmapped: a retry sets it aside again, unsent.
    expect(await h.deadLetters.apply({ action: 'retry', seqs: [2, 9] })).toEqual({
      changed: [2],
      unknown: [9],
    })
    await until(() => h.metrics.get(NO_MAPPING) === 3, 'set aside again')
    expect(first.calls).toEqual([])
    expect((await h.letters()).map((l) => [l.seq, l.state])).toEqual([
      [1, 'held'],
      [2, 'held'],
    ])
    h.sessions.next(null)

    // The mapping fixed (a new pipeline, as after a restart with the new config): a retry delivers it.
    for (const s of running.splice(0)) s.unsubscribe()
    const fixed: Settled[] = []
    running.push(
      uplinkPipeline({
        queue: h.queue,
        deadLetters: h.deadLetters,
        sessions: h.sessions,
        mappings: MAPPINGS,
        gatewayId: GATEWAY_ID,
        inflight: 10,
        protector: PROTECTOR,
        logger: createLogger({ level: 'silent', destination: discard }),
        metrics: h.metrics,
      }).subscribe((s) => fixed.push(s)),
    )
    const second = new FakeSession()
    h.sessions.next(second.asSession())
    expect(second.calls).toEqual([])
    await h.deadLetters.apply({ action: 'retry', all: true })
    await until(() => second.calls.length === 2, 'the retried letters')
    expect(second.seqs).toEqual([1, 2])
    expect(second.calls[0]!.message.topic).toBe(`site/gw-1/${message(1).topic}`)
    second.calls[0]!.resolve()
    second.calls[1]!.resolve()
    await until(() => h.deadLetters.stats().depth === 0, 'the letters settled')
    expect(fixed.map((s) => [s.entry.seq, s.from, s.outcome])).toEqual([
      [1, 'dead-letter', 'delivered'],
      [2, 'dead-letter', 'delivered'],
    ])
    expect(await h.letters()).toEqual([])
    expect(h.metrics.get(DELIVERED)).toBe(2)
    // Gone for good: a new session sends nothing.
    h.sessions.next(null)
    const third = new FakeSession()
    h.sessions.next(third.asSession())
    expect(third.calls).toEqual([])
  })

  it('keeps an entry in the queue, unsent, when the dead letters are full; counted as failed', async () => {
    // Room for one letter of message(n), not two.
    const h = await harness(10, { mappings: [], deadLetterQuota: 150 })
    h.append(1, 2)
    const session = new FakeSession()
    h.sessions.next(session.asSession())
    await until(
      () => h.metrics.get(FAILED_FULL) >= 1 && h.metrics.get(NO_MAPPING) === 1,
      'one held, one refused',
    )
    expect(session.calls).toEqual([])
    expect(h.queuedSeqs()).toEqual([2])
    expect((await h.letters()).map((l) => l.seq)).toEqual([1])
  })

  it('has at most `inflight` publishes awaiting acknowledgement', async () => {
    const h = await harness(2)
    h.append(1, 5)
    const session = new FakeSession()
    h.sessions.next(session.asSession())
    expect(session.seqs).toEqual([1, 2])
    h.append(6, 6)
    await settle()
    expect(session.seqs).toEqual([1, 2])

    session.calls[1]!.resolve()
    await settle()
    expect(session.seqs).toEqual([1, 2, 3])
    session.calls[0]!.resolve()
    session.calls[2]!.resolve()
    await settle()
    expect(session.seqs).toEqual([1, 2, 3, 4, 5])
    session.calls[3]!.resolve()
    session.calls[4]!.resolve()
    await settle()
    expect(session.seqs).toEqual([1, 2, 3, 4, 5, 6])
    session.calls[5]!.resolve()
    await settle()
    expect(session.maxPending).toBe(2)
    expect(session.pending).toBe(0)
    expect(h.queue.size).toBe(0)
    expect(h.metrics.get(DELIVERED)).toBe(6)
  })

  it('removes an entry from the queue only once its publish resolved', async () => {
    const h = await harness(10)
    h.append(1, 3)
    const session = new FakeSession()
    h.sessions.next(session.asSession())
    await settle()
    expect(session.seqs).toEqual([1, 2, 3])
    expect(h.queue.size).toBe(3)
    expect(h.settled).toEqual([])

    session.calls[1]!.resolve()
    await settle()
    expect(h.queuedSeqs()).toEqual([1, 3])
    expect(h.settled.map((s) => [s.entry.seq, s.outcome])).toEqual([[2, 'delivered']])
    expect(h.metrics.get(DELIVERED)).toBe(1)
    expect(h.queue.stats().oldestReceivedAt).toBe(message(1).receivedAt)

    session.calls[0]!.resolve()
    session.calls[2]!.resolve()
    await settle()
    expect(h.queue.size).toBe(0)
    expect(h.settled.map((s) => s.entry.seq)).toEqual([2, 1, 3])
    expect(h.metrics.get(DELIVERED)).toBe(3)
  })

  it('publishes the unacknowledged entries again, from the oldest, on the next session', async () => {
    const h = await harness(2)
    h.append(1, 4)
    const first = new FakeSession()
    h.sessions.next(first.asSession())
    first.calls[0]!.resolve()
    await settle()
    expect(first.seqs).toEqual([1, 2, 3])

    h.sessions.next(null)
    // What the old session settles after it ended changes nothing.
    first.calls[1]!.resolve()
    first.calls[2]!.reject(new Error('connection closed'))
    await settle()
    expect(first.seqs).toEqual([1, 2, 3])
    expect(h.queuedSeqs()).toEqual([2, 3, 4])
    expect(h.metrics.get(DELIVERED)).toBe(1)

    const second = new FakeSession()
    h.sessions.next(second.asSession())
    expect(second.seqs).toEqual([2, 3])
    second.calls[0]!.resolve()
    second.calls[1]!.resolve()
    await settle()
    expect(second.seqs).toEqual([2, 3, 4])
    second.calls[2]!.resolve()
    await settle()
    expect(h.queue.size).toBe(0)
    expect(h.settled.map((s) => s.entry.seq)).toEqual([1, 2, 3, 4])
    expect(h.metrics.get(DELIVERED)).toBe(4)
  })

  it('starts again from the oldest when one session directly replaces another', async () => {
    const h = await harness(10)
    h.append(1, 3)
    const first = new FakeSession()
    h.sessions.next(first.asSession())
    first.calls[0]!.resolve()
    await settle()
    const second = new FakeSession()
    h.sessions.next(second.asSession())
    expect(second.seqs).toEqual([2, 3])
    h.append(4, 4)
    expect(first.seqs).toEqual([1, 2, 3])
    expect(second.seqs).toEqual([2, 3, 4])
  })

  it('sets an entry the cloud refused aside as a cloud_refused dead letter (kept, not dropped), and goes on with the next', async () => {
    const h = await harness(1)
    h.append(1, 3)
    const session = new FakeSession()
    h.sessions.next(session.asSession())
    session.calls[0]!.reject(new CloudRefusal(0x87))
    await until(() => h.deadLetters.stats().depth === 1, 'the refused entry set aside')
    expect(h.queuedSeqs()).toEqual([2, 3])
    expect(h.metrics.get(REFUSED)).toBe(1)
    expect(h.metrics.get(DELIVERED)).toBe(0)
    expect(h.settled).toEqual([])
    expect(h.deadLetters.stats()).toMatchObject({ depth: 1, byReason: { cloud_refused: 1 } })

    expect(session.seqs).toEqual([1, 2])
    session.calls[1]!.resolve()
    await settle()
    session.calls[2]!.resolve()
    await settle()
    expect(h.queue.size).toBe(0)
    expect(h.metrics.get(DELIVERED)).toBe(2)

    // A refused entry is not published again on the next session (an operator retries it).
    h.sessions.next(null)
    const next = new FakeSession()
    h.sessions.next(next.asSession())
    expect(next.calls).toEqual([])
    expect(h.errors).toEqual([])
  })

  it('keeps an entry queued when its publish failed for another reason, sends nothing more on that session, and sends it on the next', async () => {
    const h = await harness(2)
    h.append(1, 2)
    const first = new FakeSession()
    h.sessions.next(first.asSession())
    expect(first.seqs).toEqual([1, 2])
    first.calls[0]!.reject(new Error('client disconnecting'))
    first.calls[1]!.reject({ code: 'ECONNRESET' })
    await settle()
    expect(h.queuedSeqs()).toEqual([1, 2])
    expect(h.metrics.snapshot()).toEqual({ [INTERRUPTED]: 2 })
    expect(h.settled).toEqual([])

    h.sessions.next(null)
    const second = new FakeSession()
    h.sessions.next(second.asSession())
    expect(second.seqs).toEqual([1, 2])
    second.calls[0]!.resolve()
    second.calls[1]!.resolve()
    await settle()
    expect(h.queue.size).toBe(0)
    expect(h.metrics.snapshot()).toEqual({ [INTERRUPTED]: 2, [DELIVERED]: 2 })
    expect(h.errors).toEqual([])
  })

  it('sends nothing more on a session once a publish failed without an answer (a disconnecting client)', async () => {
    // 20,000 entries wait behind one in flight. The connection drops: mqtt.js fails the one in
    // flight, and would call back inside publish() for each next one while it disconnects. None is
    // sent on it: they wait for the next session, and the stack does not deepen either way.
    const h = await harness(1, { capacity: 20_000 })
    h.append(1, 20_000)
    const pending: Array<(err?: Error) => void> = []
    let disconnecting = false
    const session = {
      calls: 0,
      unsendable: () => undefined,
      send(_message: OutboundMessage, done: (err?: Error) => void) {
        session.calls++
        if (disconnecting) done(new Error('client disconnecting'))
        else pending.push(done)
      },
    }
    h.sessions.next(session as unknown as CloudSession)
    await settle()
    expect(session.calls).toBe(1)
    disconnecting = true
    pending[0]!(new Error('connection closed'))
    await settle()
    expect(session.calls).toBe(1)
    expect(h.metrics.get(INTERRUPTED)).toBe(1)
    expect(h.queue.size).toBe(20_000)
    expect(h.settled).toEqual([])
    expect(h.errors).toEqual([])
  })
})
