/**
 * The cloud-side subscriber, run by bench/run.mjs as a child process for the
 * whole run: one mutual-TLS MQTT 3.1.1 session to the cloud mosquitto,
 * subscribed to `gateways/#` and to the gateways' key bindings at QoS 1. Per
 * trial it counts distinct message ids per publisher, duplicates and latency
 * (send stamp in the payload), and sends closed-loop credits back to the
 * publishers over a Unix socket.
 *
 * Mosquitto forwards the device payload as it is. The gateway sends a signed
 * envelope (bench/lib/envelope.mjs): the stamp is read from its body, opened
 * first when it is HPKE-sealed to the bench's cloud recipient (every message,
 * with node:crypto). Every `verifyEvery`-th message of each publisher goes
 * through the project's own EnvelopeConsumer (dist/bridge/consumer.js: key
 * binding to the edge certificate, Ed25519 signature with the cloud topic as
 * AAD, gateway id, HPKE open with crypto/hpke.ts), off the hot path; its
 * opened body must equal what the fast path read. Verifying every message
 * would cost the shared 2 cores more than the gateway's own signing (see
 * docs/performance.md), so it is a sample unless `--verify-every 1`.
 */
import { rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { bitsToBase64, createBits, setBit } from './lib/bitset.mjs'
import { cpuMicros, send, serveParent } from './lib/child.mjs'
import { connectMqtt } from './lib/connect.mjs'
import { createHpkeOpener, ENVELOPE_FIRST_BYTE, readEnvelope } from './lib/envelope.mjs'
import { PINGREQ_PACKET, PUBLISH, parsePublish, SUBACK, subscribePacket } from './lib/mqtt-wire.mjs'
import { nowMicros, PROBE_TRIAL, readStamp } from './lib/payload.mjs'
import { percentiles } from './lib/stats.mjs'

const DIST = new URL('../dist/', import.meta.url)
/** Sampled messages waiting for the verifier, at most; more are counted as skipped. */
const MAX_VERIFY_BACKLOG = 2_000
const BODY_PLAIN = 0
const BODY_HPKE = 1
const DOLLAR = 0x24

let conn
/** The project's consumer (dist/bridge/consumer.js), the fast HPKE opener, and how often to verify. */
let consumer = null
let openHpke = null
let verifyEvery = 1
/** Verifications run one after another, in arrival order, like `edge-gateway cloud consume`. */
let verifyChain = Promise.resolve()
let verifyBacklog = 0
/** Per kid: the samples the consumer holds until that gateway's key binding arrives, in order. */
const awaitingBinding = new Map()
const bindings = { ok: 0, failed: 0, failures: [] }
let trial = null
/**
 * Per trial id: messages that arrived after that trial's drain had ended and had not arrived before
 * (the drain ended too early), and repeats of messages that had (a redelivery still on its way).
 */
const lateByTrial = new Map()
const lateRepeatsByTrial = new Map()
/** The message ids each finished trial received, to tell a late message from a late repeat. */
const finishedBits = new Map()
let acks = []
const creditSockets = new Map()
let credits = []
let creditsQueued = false

function beginTrial({ trial: id, publishers, maxPerPublisher }) {
  trial = {
    id,
    bits: Array.from({ length: publishers }, () => createBits(maxPerPublisher)),
    perPublisher: new Array(publishers).fill(0),
    received: 0,
    duplicates: 0,
    foreign: 0,
    latencies: new Float64Array(Math.min(publishers * maxPerPublisher, 4_000_000)),
    first: 0,
    last: 0,
    cpuAtBegin: cpuMicros(),
    envelopes: 0,
    envelopeBytes: 0,
    hpkeOpened: 0,
    hpkeFailures: 0,
    samples: 0,
    verified: 0,
    verifyFailures: 0,
    verifySkipped: 0,
    failureKinds: {},
  }
  credits = new Array(publishers).fill(0)
}

function onPublish(flags, body) {
  const { qos, packetId, topicStart, topicLength, payload } = parsePublish(flags, body)
  if (qos > 0) acks.push(packetId)
  // The only `$` topics subscribed to are the key bindings.
  if (body[topicStart] === DOLLAR) {
    onBinding(Buffer.from(payload))
    return
  }
  let stampBytes = payload
  let envelope = null
  if (payload[0] === ENVELOPE_FIRST_BYTE) {
    const topic = body.toString('utf8', topicStart, topicStart + topicLength)
    envelope = readEnvelope(payload)
    if (envelope === null || envelope.kind !== 1) {
      if (trial) trial.foreign++
      return
    }
    if (trial && trial.envelopes++ === 0) trial.envelopeBytes = payload.length
    if (envelope.protection === BODY_PLAIN) stampBytes = envelope.body
    else if (envelope.protection === BODY_HPKE && openHpke) {
      stampBytes = openHpke(envelope.body, envelope.topic)
      if (trial) trial[stampBytes ? 'hpkeOpened' : 'hpkeFailures']++
      if (stampBytes === null) return
    } else {
      if (trial) trial.foreign++
      return
    }
    envelope.cloudTopic = topic
  }
  const stamp = readStamp(stampBytes)
  if (stamp === null) {
    if (trial) trial.foreign++
    return
  }
  if (stamp.trial === PROBE_TRIAL) {
    send({ type: 'probe', publisher: stamp.publisher, counter: stamp.counter })
    return
  }
  if (trial === null || stamp.trial !== trial.id) {
    // Publishers start after `begin`, so this is a message of a trial that has already finished.
    const bits = finishedBits.get(stamp.trial)?.[stamp.publisher]
    const counts = bits && !setBit(bits, stamp.counter) ? lateRepeatsByTrial : lateByTrial
    counts.set(stamp.trial, (counts.get(stamp.trial) ?? 0) + 1)
    return
  }
  const bits = trial.bits[stamp.publisher]
  if (!bits) {
    trial.foreign++
    return
  }
  const now = nowMicros()
  if (!setBit(bits, stamp.counter)) {
    trial.duplicates++
    return
  }
  if (envelope !== null && stamp.counter % verifyEvery === 0) sample(trial, envelope, payload, stampBytes)
  if (trial.received < trial.latencies.length) trial.latencies[trial.received] = now - stamp.micros
  trial.received++
  trial.perPublisher[stamp.publisher]++
  if (trial.first === 0) trial.first = now
  trial.last = now
  credits[stamp.publisher]++
  if (!creditsQueued) {
    creditsQueued = true
    setImmediate(flushCredits)
  }
}

/** Queues one message for the project's consumer; its opened body must be `expected` (what the fast path read). */
function sample(t, envelope, payload, expected) {
  t.samples++
  if (verifyBacklog >= MAX_VERIFY_BACKLOG) {
    t.verifySkipped++
    return
  }
  verifyBacklog++
  const ctx = { t, expected: Buffer.from(expected), hpke: envelope.protection === BODY_HPKE }
  const bytes = Buffer.from(payload)
  const { cloudTopic } = envelope
  verifyChain = verifyChain.then(async () => {
    verifyBacklog--
    const result = await consumer
      .message(cloudTopic, bytes)
      .catch((err) => ({ ok: false, failure: String(err) }))
    if (result.ok === 'pending') {
      if (!awaitingBinding.has(result.kid)) awaitingBinding.set(result.kid, [])
      awaitingBinding.get(result.kid).push(ctx)
    } else settle(ctx, result)
  })
}

function settle(ctx, result) {
  const { t } = ctx
  let failure = null
  if (result.ok !== true) failure = result.failure
  else if (result.message.protection !== (ctx.hpke ? 'hpke' : 'plain')) failure = 'protection_mismatch'
  else if (!result.message.body.equals(ctx.expected)) failure = 'body_mismatch'
  if (failure === null) {
    t.verified++
    return
  }
  t.verifyFailures++
  t.failureKinds[failure] = (t.failureKinds[failure] ?? 0) + 1
}

/** A gateway's retained key binding: the consumer learns its signing key and releases what waited for it. */
function onBinding(bytes) {
  verifyChain = verifyChain.then(async () => {
    const result = await consumer.binding(bytes)
    if (result.ok) bindings.ok++
    else {
      bindings.failed++
      if (bindings.failures.length < 5) bindings.failures.push(result.failure)
    }
    const waiting = result.kid ? (awaitingBinding.get(result.kid) ?? []) : []
    awaitingBinding.delete(result.kid)
    for (const r of result.released) {
      const ctx = waiting.shift()
      if (ctx) settle(ctx, r)
    }
  })
}

function flushCredits() {
  creditsQueued = false
  for (let id = 0; id < credits.length; id++) {
    const socket = creditSockets.get(id)
    if (credits[id] === 0 || !socket) continue
    const out = Buffer.allocUnsafe(4)
    out.writeUInt32BE(credits[id], 0)
    credits[id] = 0
    socket.write(out)
  }
}

function flushAcks() {
  if (acks.length === 0) return
  const out = Buffer.allocUnsafe(4 * acks.length)
  for (let i = 0; i < acks.length; i++) {
    out[4 * i] = 0x40
    out[4 * i + 1] = 2
    out.writeUInt16BE(acks[i], 4 * i + 2)
  }
  acks = []
  conn.socket.write(out)
}

function listenForCredits(path) {
  rmSync(path, { force: true })
  const server = createServer((socket) => {
    socket.once('data', (hello) => creditSockets.set(hello.readUInt16BE(0), socket))
    socket.on('error', () => undefined)
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(path, resolve)
  })
}

async function finishTrial() {
  const t = trial
  trial = null
  if (t === null) return { type: 'result', received: 0 }
  finishedBits.set(t.id, t.bits)
  const cpuMicrosSpent = cpuMicros() - t.cpuAtBegin
  await verifyChain
  const filled = t.latencies.subarray(0, Math.min(t.received, t.latencies.length))
  return {
    type: 'result',
    received: t.received,
    perPublisher: t.perPublisher,
    receivedBits: t.bits.map(bitsToBase64),
    duplicates: t.duplicates,
    foreign: t.foreign,
    first: t.first,
    last: t.last,
    latencyMicros: percentiles(filled, [0.5, 0.99, 0.999, 1]),
    cpuMicros: cpuMicrosSpent,
    envelope: {
      envelopes: t.envelopes,
      // The size of one envelope of this load (what a device payload becomes on the cloud link).
      envelopeBytes: t.envelopeBytes,
      hpkeOpened: t.hpkeOpened,
      hpkeFailures: t.hpkeFailures,
      verifyEvery,
      samples: t.samples,
      verified: t.verified,
      verifyFailures: t.verifyFailures,
      verifySkipped: t.verifySkipped,
      // Still held by the consumer for a key binding that never came.
      unresolved: t.samples - t.verifySkipped - t.verified - t.verifyFailures,
      failureKinds: t.failureKinds,
      bindings: { ...bindings },
    },
  }
}

serveParent({
  async init({ config }) {
    const { EnvelopeConsumer } = await import(new URL('bridge/consumer.js', DIST).href)
    const { X509Certificate } = await import('node:crypto')
    const recipient = config.recipient
    const kid = Buffer.from(recipient.kidHex, 'hex')
    const privateKey = Buffer.from(recipient.privateKeyHex, 'hex')
    consumer = new EnvelopeConsumer(new X509Certificate(config.caPem), [{ kid, privateKey }])
    openHpke = createHpkeOpener(privateKey, kid)
    verifyEvery = config.verifyEvery
    await listenForCredits(config.creditSocket)
    conn = await connectMqtt(config.endpoint, { clientId: config.clientId, keepalive: 60 })
    const granted = []
    const subscribed = new Promise((resolve) => {
      conn.setHandler((type, flags, body) => {
        if (type === PUBLISH) onPublish(flags, body)
        else if (type === SUBACK && granted.push(body[2]) === config.filters.length) resolve(granted)
      })
    })
    conn.socket.on('data', flushAcks)
    conn.socket.once('close', () =>
      send({ type: 'error', message: 'the subscriber lost its cloud connection' }),
    )
    for (const [i, filter] of config.filters.entries()) conn.socket.write(subscribePacket(i + 1, filter, 1))
    const grants = await subscribed
    if (grants.some((g) => g !== 1)) throw new Error(`Expected SUBACKs granting QoS 1, got ${grants}`)
    setInterval(() => conn.socket.write(PINGREQ_PACKET), 30_000).unref()
    send({ type: 'ready' })
  },
  begin(message) {
    beginTrial(message)
    send({ type: 'begun', trial: message.trial })
  },
  progress() {
    send({ type: 'progress', received: trial?.received ?? 0, last: trial?.last ?? 0 })
  },
  async finish() {
    send(await finishTrial())
  },
  late() {
    send({
      type: 'late',
      byTrial: Object.fromEntries(lateByTrial),
      repeatsByTrial: Object.fromEntries(lateRepeatsByTrial),
    })
  },
  exit() {
    conn?.socket.end()
    setTimeout(() => process.exit(0), 50)
  },
})
