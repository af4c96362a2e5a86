/**
 * The cloud-side subscriber, run by bench/run.mjs as a child process for the
 * whole run: one mutual-TLS MQTT 3.1.1 session to the cloud mosquitto,
 * subscribed to `gateways/#` at QoS 1. Per trial it counts distinct message ids
 * per publisher, duplicates and latency (send stamp in the payload), and sends
 * closed-loop credits back to the publishers over a Unix socket.
 */
import { rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { bitsToBase64, createBits, setBit } from './lib/bitset.mjs'
import { cpuMicros, send, serveParent } from './lib/child.mjs'
import { connectMqtt } from './lib/connect.mjs'
import { PINGREQ_PACKET, PUBLISH, parsePublish, SUBACK, subscribePacket } from './lib/mqtt-wire.mjs'
import { nowMicros, PROBE_TRIAL, readStamp } from './lib/payload.mjs'
import { percentiles } from './lib/stats.mjs'

let conn
let trial = null
let stale = 0
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
  }
  credits = new Array(publishers).fill(0)
  stale = 0
}

function onPublish(flags, body) {
  const { qos, packetId, payload } = parsePublish(flags, body)
  if (qos > 0) acks.push(packetId)
  const stamp = readStamp(payload)
  if (stamp === null) {
    if (trial) trial.foreign++
    return
  }
  if (stamp.trial === PROBE_TRIAL) {
    send({ type: 'probe', publisher: stamp.publisher, counter: stamp.counter })
    return
  }
  if (trial === null || stamp.trial !== trial.id) {
    stale++
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

function finishTrial() {
  const t = trial
  trial = null
  if (t === null) return { type: 'result', received: 0 }
  const filled = t.latencies.subarray(0, Math.min(t.received, t.latencies.length))
  return {
    type: 'result',
    received: t.received,
    perPublisher: t.perPublisher,
    receivedBits: t.bits.map(bitsToBase64),
    duplicates: t.duplicates,
    foreign: t.foreign,
    stale,
    first: t.first,
    last: t.last,
    latencyMicros: percentiles(filled, [0.5, 0.99, 0.999, 1]),
    cpuMicros: cpuMicros() - t.cpuAtBegin,
  }
}

serveParent({
  async init({ config }) {
    await listenForCredits(config.creditSocket)
    conn = await connectMqtt(config.endpoint, { clientId: config.clientId, keepalive: 60 })
    const subscribed = new Promise((resolve) => {
      conn.setHandler((type, flags, body) => {
        if (type === PUBLISH) onPublish(flags, body)
        else if (type === SUBACK) resolve(body[2])
      })
    })
    conn.socket.on('data', flushAcks)
    conn.socket.once('close', () =>
      send({ type: 'error', message: 'the subscriber lost its cloud connection' }),
    )
    conn.socket.write(subscribePacket(1, config.filter, 1))
    const granted = await subscribed
    if (granted !== 1) throw new Error(`Expected SUBACK granting QoS 1, got ${granted}`)
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
  finish() {
    send(finishTrial())
  },
  exit() {
    conn?.socket.end()
    setTimeout(() => process.exit(0), 50)
  },
})
