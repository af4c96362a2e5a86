/**
 * One publishing device, run by bench/run.mjs as a child process. Modes:
 *   flood   as fast as it can; QoS 1 with at most `window` publishes awaiting PUBACK,
 *           QoS 0 as fast as the socket takes them
 *   closed  at most `window` messages sent and not yet seen by the cloud subscriber
 *           (credits come back over a Unix socket from bench/subscriber.mjs), QoS 0 or 1
 *   rate    `ratePerSecond`, open loop (never waits for acknowledgements)
 *   serial  QoS 1, one message in flight: the next one goes when the PUBACK of the
 *           last has come; the PUBACK round trip of every message is reported
 *   restart the closed loop through a restart of the edge: when the connection closes it
 *           reconnects every RESTART_RETRY_MS until the edge is back, the messages still
 *           outstanding then no longer hold the window (an edge without persistence lost
 *           them), and PUBACKs are counted in ACK_BUCKET_MS buckets of the monotonic clock;
 *           it sends until the parent says `stop`
 * Every run is bounded by `maxMessages` and `durationMs`. It counts PUBACKs per
 * message id, so the parent can tell acknowledged-and-lost from never-acknowledged.
 *
 * Once it stops sending, it waits for the PUBACKs of what it sent for as long as
 * its connection lives: an edge on a live connection acknowledges every QoS 1
 * message or closes the connection (the gateway refuses that way), so a silence
 * is a slow edge, not a refusal. Giving up after a few seconds without a PUBACK
 * made a stalled edge's messages "never acknowledged", which the drain's marker
 * does not order, so they could count as missing and arrive after the trial
 * (bench/lib/drain.mjs). Only `ackStallMs` with no PUBACK at all (a hung edge)
 * ends the wait.
 */
import { connect as unixConnect } from 'node:net'
import { bitsToBase64, createBits, setBit } from './lib/bitset.mjs'
import { cpuMicros, send, serveParent } from './lib/child.mjs'
import { connectMqtt } from './lib/connect.mjs'
import { DISCONNECT_PACKET, PUBACK, publishLayout } from './lib/mqtt-wire.mjs'
import { filler, nowMicros, STAMP_BYTES, stampedPayload, writeStamp } from './lib/payload.mjs'
import { createSealer } from './lib/sealer.mjs'

const BATCH = 64
const BATCHES_PER_TURN = 8
const QOS0_BUFFER_BYTES = 256 * 1024
const MAX_RECONNECTS = 5
/** Restart mode: how often a device waiting for the edge tries again, and the PUBACK histogram's bucket. */
const RESTART_RETRY_MS = 20
const ACK_BUCKET_MS = 10
/** Closed loop: no credit and no PUBACK for this long stops sending (a lost QoS 0 message holds its slot). */
const STALL_MS = 3_000

let cfg
let conn = null
let sealer = null
let layout
let pad
let ackedBits
const pidToCounter = new Int32Array(65_536).fill(-1)
/** Serial mode: send time (µs) per packet id, and the PUBACK round trip of every acknowledged message. */
const pidSentAt = new Float64Array(65_536)
let ackRtts = null
let ackRttCount = 0
/** Restart mode: PUBACKs per ACK_BUCKET_MS from `go`, and the monotonic time of `go` (µs). */
let ackBuckets = null
let goMicros = 0
const s = {
  sent: 0,
  acked: 0,
  inflight: 0,
  credited: 0,
  forgiven: 0,
  disconnects: 0,
  reconnectAttempts: 0,
  firstSend: 0,
  lastSend: 0,
  lastProgress: 0,
  nextPid: 0,
  sending: false,
  finished: false,
  stalled: false,
  waitingDrain: false,
  pumpQueued: false,
  cpuAtGo: 0,
  startedAt: 0,
  deadline: 0,
  errors: [],
}
const timers = []

async function open() {
  conn = await connectMqtt(cfg.endpoint, cfg.connect)
  conn.setHandler(onPacket)
  // A restart closes connections by design: its resets are not errors of the run.
  conn.socket.on(
    'error',
    (err) => cfg.mode !== 'restart' && s.errors.length < 5 && s.errors.push(err.message),
  )
  conn.socket.once('close', onClose)
}

function onPacket(type, _flags, body) {
  if (type !== PUBACK) return
  const pid = body.readUInt16BE(0)
  const counter = pidToCounter[pid]
  if (counter < 0) return
  pidToCounter[pid] = -1
  s.inflight--
  if (ackRtts !== null && ackRttCount < ackRtts.length) ackRtts[ackRttCount++] = nowMicros() - pidSentAt[pid]
  if (ackBuckets !== null) {
    const at = Math.floor((nowMicros() - goMicros) / (ACK_BUCKET_MS * 1000))
    if (at >= 0 && at < ackBuckets.length) ackBuckets[at]++
  }
  if (setBit(ackedBits, counter)) s.acked++
  s.lastProgress = Date.now()
  if (cfg.mode === 'flood' || cfg.mode === 'serial') queuePump()
}

function onClose() {
  conn = null
  if (s.finished) return
  s.disconnects++
  pidToCounter.fill(-1)
  s.inflight = 0
  if (cfg.mode === 'restart') {
    if (s.sending) setTimeout(waitForEdge, RESTART_RETRY_MS)
    return
  }
  if (s.disconnects > MAX_RECONNECTS || !s.sending) return
  setTimeout(() => open().then(queuePump, (err) => s.errors.push(`reconnect: ${err.message}`)), 200)
}

/** Restart mode: connects again as soon as the edge accepts; refused attempts while it is down are expected. */
function waitForEdge() {
  if (!s.sending || conn !== null) return
  s.reconnectAttempts++
  open().then(
    () => {
      // What was outstanding at the restart may never come back (Mosquitto keeps nothing across one).
      s.forgiven = s.sent - s.credited
      queuePump()
    },
    () => {
      if (s.sending) setTimeout(waitForEdge, RESTART_RETRY_MS)
    },
  )
}

function nextPacketId() {
  for (let tries = 0; tries < 65_535; tries++) {
    s.nextPid = (s.nextPid % 65_535) + 1
    if (pidToCounter[s.nextPid] < 0) return s.nextPid
  }
  return 0
}

/** Writes `n` messages in one socket write; false when the socket asks us to wait. */
function sendBatch(n) {
  const micros = nowMicros()
  if (s.firstSend === 0) s.firstSend = micros
  const packets = sealer ? [] : null
  const buf = sealer ? null : Buffer.allocUnsafe(layout.size * n)
  let at = 0
  for (let k = 0; k < n; k++) {
    let pid = 0
    if (cfg.qos > 0) {
      pid = nextPacketId()
      if (pid === 0) break
      pidToCounter[pid] = s.sent
      pidSentAt[pid] = micros
      s.inflight++
    }
    const counter = s.sent++
    if (sealer) {
      const payload = sealer(stampedPayload(cfg.payloadSize, cfg.trial, cfg.id, counter), counter + 1)
      const sized = publishLayout(cfg.topic, cfg.qos, payload.length)
      const packet = Buffer.allocUnsafe(sized.size)
      payload.copy(packet, sized.write(packet, 0, pid))
      packets.push(packet)
    } else {
      const p = layout.write(buf, at, pid)
      writeStamp(buf, p, cfg.trial, cfg.id, counter, micros)
      pad.copy(buf, p + STAMP_BYTES)
      at += layout.size
    }
  }
  s.lastSend = micros
  return conn.socket.write(sealer ? Buffer.concat(packets) : buf.subarray(0, at))
}

function allowance() {
  const left = cfg.maxMessages - s.sent
  if (cfg.mode === 'flood') {
    if (cfg.qos === 0) return conn.socket.writableLength < QOS0_BUFFER_BYTES ? Math.min(left, BATCH) : 0
    return Math.min(left, cfg.window - s.inflight)
  }
  if (cfg.mode === 'closed') return Math.min(left, cfg.window - (s.sent - s.credited))
  if (cfg.mode === 'serial') return Math.min(left, 1 - s.inflight)
  if (cfg.mode === 'restart')
    return Math.min(left, cfg.window - Math.max(0, s.sent - s.credited - s.forgiven))
  const due = Math.floor(((Date.now() - s.startedAt) * cfg.ratePerSecond) / 1000)
  return Math.min(left, due - s.sent)
}

function queuePump() {
  if (s.pumpQueued) return
  s.pumpQueued = true
  setImmediate(pump)
}

function pump() {
  s.pumpQueued = false
  if (!s.sending || conn === null || s.waitingDrain) return
  if (s.sent >= cfg.maxMessages || Date.now() >= s.deadline) {
    stopSending()
    return
  }
  for (let turn = 0; turn < BATCHES_PER_TURN; turn++) {
    const n = Math.min(allowance(), BATCH)
    if (n <= 0) return
    const flowing = sendBatch(n)
    if (!flowing && cfg.mode === 'flood' && cfg.qos === 0) {
      s.waitingDrain = true
      conn.socket.once('drain', () => {
        s.waitingDrain = false
        queuePump()
      })
      return
    }
  }
  if (cfg.mode === 'flood' && cfg.qos === 0) queuePump()
}

function openCredits() {
  return new Promise((resolve, reject) => {
    const socket = unixConnect(cfg.creditSocket, () => {
      const hello = Buffer.alloc(2)
      hello.writeUInt16BE(cfg.id, 0)
      socket.write(hello)
      resolve()
    })
    socket.once('error', reject)
    let pending = Buffer.alloc(0)
    socket.on('data', (chunk) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk
      let at = 0
      for (; at + 4 <= pending.length; at += 4) s.credited += pending.readUInt32BE(at)
      pending = pending.subarray(at)
      s.lastProgress = Date.now()
      queuePump()
    })
  })
}

function go() {
  goMicros = nowMicros()
  s.cpuAtGo = cpuMicros()
  s.startedAt = Date.now()
  s.lastProgress = s.startedAt
  s.deadline = s.startedAt + cfg.durationMs
  s.sending = true
  timers.push(setTimeout(stopSending, cfg.durationMs))
  if (cfg.mode === 'rate') timers.push(setInterval(pump, 1))
  if (cfg.mode === 'closed') {
    timers.push(
      setInterval(() => {
        if (Date.now() - s.lastProgress < STALL_MS) return
        afterPendingIo(() => {
          if (!s.sending || Date.now() - s.lastProgress < STALL_MS) return
          s.stalled = true
          stopSending()
        })
      }, 500),
    )
  }
  queuePump()
}

/**
 * Runs `fn` after the event loop has read what is waiting on the sockets: a timer
 * fires before the poll phase, so a process that was not scheduled for a while
 * would otherwise see a silence that is only unread data.
 */
function afterPendingIo(fn) {
  setImmediate(fn)
}

function stopSending() {
  if (!s.sending) return
  s.sending = false
  for (const t of timers) clearTimeout(t)
  // Every PUBACK of a live connection comes (see the top of this file): wait for them all.
  s.lastProgress = Date.now()
  const waitingAcks = () => cfg.qos > 0 && s.inflight > 0 && conn !== null
  // A closed loop also waits for its loop to close: the subscriber has seen every message it sent
  // (QoS 0 included, which the drain's marker does not order), or nothing came for STALL_MS (a lost
  // QoS 0 message). This only lets the messages arrive first; the drain still decides what is lost.
  const waitingCredits = () =>
    cfg.mode === 'closed' && s.sent > s.credited && Date.now() - s.lastProgress < STALL_MS
  const stale = () => Date.now() - s.lastProgress >= cfg.ackStallMs
  const wait = () => {
    if (!waitingAcks() && !waitingCredits()) finish()
    else if (!waitingAcks() || !stale()) setTimeout(wait, 20)
    else
      afterPendingIo(() => {
        if (!waitingAcks()) wait()
        else if (!stale()) setTimeout(wait, 20)
        else {
          s.errors.push(`${s.inflight} PUBACKs still missing after ${cfg.ackStallMs} ms without one`)
          finish()
        }
      })
  }
  wait()
}

function finish() {
  if (s.finished) return
  s.finished = true
  send({
    type: 'report',
    id: cfg.id,
    sent: s.sent,
    acked: s.acked,
    ackedBits: cfg.qos > 0 ? bitsToBase64(ackedBits) : null,
    firstSend: s.firstSend,
    lastSend: s.lastSend,
    disconnects: s.disconnects,
    stalled: s.stalled,
    ...(ackRtts !== null && { ackRttMicros: Array.from(ackRtts.subarray(0, ackRttCount)) }),
    ...(ackBuckets !== null && {
      acks: { goMicros, bucketMs: ACK_BUCKET_MS, buckets: Array.from(ackBuckets) },
      reconnectAttempts: s.reconnectAttempts,
    }),
    cpuMicros: cpuMicros() - s.cpuAtGo,
    wallMs: Date.now() - s.startedAt,
    errors: s.errors,
  })
}

serveParent({
  async init(message) {
    cfg = message.config
    ackedBits = createBits(cfg.maxMessages)
    if (cfg.mode === 'serial') {
      if (cfg.qos !== 1) throw new Error(`Expected QoS 1 for a serial load, got ${cfg.qos}`)
      ackRtts = new Float64Array(cfg.maxMessages)
    }
    if (cfg.mode === 'restart') ackBuckets = new Uint32Array(Math.ceil(cfg.durationMs / ACK_BUCKET_MS))
    pad = filler(cfg.payloadSize)
    layout = publishLayout(cfg.topic, cfg.qos, cfg.payloadSize)
    if (cfg.sealed) sealer = await createSealer({ ...cfg.sealed, topic: cfg.topic })
    if (cfg.mode === 'closed' || cfg.mode === 'restart') await openCredits()
    await open()
    send({ type: 'ready', id: cfg.id })
  },
  go,
  stop: stopSending,
  exit() {
    s.finished = true
    conn?.socket.end(DISCONNECT_PACKET)
    setTimeout(() => process.exit(0), 50)
  },
})
