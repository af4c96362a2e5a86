import { createPublicKey, generateKeyPairSync } from 'node:crypto'
import { Writable } from 'node:stream'
import { BehaviorSubject, type Subscription } from 'rxjs'
import { afterEach, describe, expect, it } from 'vitest'
import { CloudProtector } from '../../bridge/cloud-protector.js'
import { CloudRefusal, type CloudSession, type OutboundMessage } from '../../bridge/cloud-session.js'
import { BodyProtection, EnvelopeKind, verifyEnvelope } from '../../bridge/envelope.js'
import type { Settled } from '../../bridge/operators/forward.js'
import { uplinkPipeline } from '../../bridge/pipeline.js'
import { MemoryQueue } from '../../bridge/queue/memory-queue.js'
import { createLogger } from '../../core/logger.js'
import { Metrics } from '../../core/metrics.js'
import { message } from './queue/contract.js'

const GATEWAY_ID = 'gw-1'
const MAPPINGS = [{ local: 'devices/', cloud: 'site/gw-1/devices/', mode: 'client-to-broker' as const }]
const SIGNING_KEY = generateKeyPairSync('ed25519').privateKey
const PROTECTOR = new CloudProtector(GATEWAY_ID, SIGNING_KEY, new Map())
const verifyingKey = { key: createPublicKey(SIGNING_KEY), gatewayId: GATEWAY_ID }
const DELIVERED = 'uplink_delivered_total'
const REFUSED = 'uplink_dropped_total{reason="cloud_refused"}'
const INTERRUPTED = 'uplink_publish_interrupted_total'

interface PendingPublish {
  message: OutboundMessage
  resolve: () => void
  reject: (err: unknown) => void
}

/** Stands in for a CloudSession: records each publish and lets the test settle it. */
class FakeSession {
  readonly calls: PendingPublish[] = []
  pending = 0
  maxPending = 0

  publish(message: OutboundMessage): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending++
      this.maxPending = Math.max(this.maxPending, this.pending)
      const settle = (fn: () => void) => () => {
        this.pending--
        fn()
      }
      this.calls.push({
        message,
        resolve: settle(resolve),
        reject: (err) => settle(() => reject(err))(),
      })
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

function harness(inflight: number, capacity = 100) {
  const queue = new MemoryQueue(capacity)
  const sessions = new BehaviorSubject<CloudSession | null>(null)
  const metrics = new Metrics()
  const settled: Settled[] = []
  const errors: unknown[] = []
  const subscription = uplinkPipeline({
    queue,
    sessions,
    mappings: MAPPINGS,
    gatewayId: GATEWAY_ID,
    inflight,
    protector: PROTECTOR,
    logger: createLogger({ level: 'silent', destination: discard }),
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
  return { queue, sessions, metrics, settled, errors, append, queuedSeqs }
}

const running: Subscription[] = []
afterEach(() => {
  for (const s of running.splice(0)) s.unsubscribe()
})

describe('uplinkPipeline', () => {
  it('publishes nothing while there is no session', async () => {
    const h = harness(10)
    h.append(1, 3)
    await settle()
    h.sessions.next(null)
    h.append(4, 4)
    await settle()
    expect(h.queue.size).toBe(4)
    expect(h.settled).toEqual([])
    expect(h.metrics.snapshot()).toEqual({})
  })

  it('publishes queued entries in order on a session, with the mapped topic and the gateway user properties', () => {
    const h = harness(10)
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

  it('keeps the local topic when no mapping matches any more', () => {
    const h = harness(10)
    h.queue.append({ ...message(1), topic: 'elsewhere/x' })
    const session = new FakeSession()
    h.sessions.next(session.asSession())
    expect(session.calls.map((c) => c.message.topic)).toEqual(['elsewhere/x'])
  })

  it('has at most `inflight` publishes awaiting acknowledgement', async () => {
    const h = harness(2)
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
    const h = harness(10)
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
    const h = harness(2)
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
    const h = harness(10)
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

  it('drops and counts an entry the cloud refused, and goes on with the next', async () => {
    const h = harness(1)
    h.append(1, 3)
    const session = new FakeSession()
    h.sessions.next(session.asSession())
    session.calls[0]!.reject(new CloudRefusal(0x87))
    await settle()
    expect(h.queuedSeqs()).toEqual([2, 3])
    expect(h.metrics.get(REFUSED)).toBe(1)
    expect(h.metrics.get(DELIVERED)).toBe(0)
    expect(h.settled.map((s) => [s.entry.seq, s.outcome])).toEqual([[1, 'refused']])

    expect(session.seqs).toEqual([1, 2])
    session.calls[1]!.resolve()
    await settle()
    session.calls[2]!.resolve()
    await settle()
    expect(h.queue.size).toBe(0)
    expect(h.metrics.snapshot()).toEqual({ [REFUSED]: 1, [DELIVERED]: 2 })

    // A refused entry is not published again on the next session.
    h.sessions.next(null)
    const next = new FakeSession()
    h.sessions.next(next.asSession())
    expect(next.calls).toEqual([])
    expect(h.errors).toEqual([])
  })

  it('keeps an entry queued when its publish failed for another reason, and sends it on the next session', async () => {
    const h = harness(1)
    h.append(1, 2)
    const first = new FakeSession()
    h.sessions.next(first.asSession())
    first.calls[0]!.reject(new Error('client disconnecting'))
    await settle()
    expect(h.queuedSeqs()).toEqual([1, 2])
    expect(h.metrics.snapshot()).toEqual({ [INTERRUPTED]: 1 })
    expect(h.settled).toEqual([])
    // The pipeline lives on: the next entry still goes out on this session.
    expect(first.seqs).toEqual([1, 2])
    first.calls[1]!.reject({ code: 'ECONNRESET' })
    await settle()
    expect(h.queuedSeqs()).toEqual([1, 2])
    expect(h.metrics.get(INTERRUPTED)).toBe(2)

    h.sessions.next(null)
    const second = new FakeSession()
    h.sessions.next(second.asSession())
    expect(second.seqs).toEqual([1])
    second.calls[0]!.resolve()
    await settle()
    second.calls[1]!.resolve()
    await settle()
    expect(second.seqs).toEqual([1, 2])
    expect(h.queue.size).toBe(0)
    expect(h.metrics.snapshot()).toEqual({ [INTERRUPTED]: 2, [DELIVERED]: 2 })
    expect(h.errors).toEqual([])
  })
})
