/**
 * The steady devices, a child process of bench/storm.mjs: each publishes QoS 1
 * at a fixed rate with one message in flight, the whole run. Latency is
 * counted from when a message was due (no coordinated omission): a message due
 * while the previous one waits for its PUBACK waits too, and that is part of
 * its latency.
 *
 * Only while connected: when the edge closes the session (a restart), what
 * was due or in flight is counted as cut, not as latency, and the device
 * reconnects every RETRY_MS; its schedule starts again at its CONNACK. The
 * reconnections are reported (when the session was lost, when it was back).
 *
 * Times are epoch milliseconds (performance.timeOrigin + performance.now()).
 * IPC: init -> ready; stats { from, to, lostSince } -> stats (latency of what was due in
 * [from, to], the reconnections of sessions lost since `lostSince`); exit.
 */
import { send, serveParent } from '../child.mjs'
import { connectMqtt } from '../connect.mjs'
import { DISCONNECT_PACKET, PUBACK, publishLayout } from '../mqtt-wire.mjs'
import { percentiles } from '../stats.mjs'

const RETRY_MS = 100
const PAYLOAD_BYTES = 64
/** Samples kept per device at most (an hour at 50 msg/s). */
const MAX_SAMPLES = 180_000
const now = () => performance.timeOrigin + performance.now()

let devices = []
let stopping = false

function makeDevice(spec, intervalMs) {
  return {
    ...spec,
    intervalMs,
    layout: publishLayout(`devices/${spec.id}/steady`, 1, PAYLOAD_BYTES),
    session: null,
    connecting: false,
    nextDueAt: 0,
    waiting: [],
    inflight: null,
    packetId: 0,
    samples: [],
    cut: 0,
    reconnects: [],
    timer: null,
  }
}

async function connect(d, lostAt) {
  if (d.connecting || stopping) return
  d.connecting = true
  let attempts = 0
  while (!stopping) {
    attempts++
    try {
      const session = await connectMqtt(d.endpoint, d.fields, 30_000)
      session.socket.on('error', () => undefined)
      session.setHandler((type, _flags, body) => {
        if (type === PUBACK) onPuback(d, body.readUInt16BE(0))
      })
      session.socket.once('close', () => onClose(d, session))
      d.session = session
      const at = now()
      if (lostAt !== undefined) d.reconnects.push({ lostAt, connectedAt: at, attempts })
      d.nextDueAt = at
      tick(d)
      break
    } catch {
      await new Promise((r) => setTimeout(r, RETRY_MS))
    }
  }
  d.connecting = false
}

function onClose(d, session) {
  if (d.session !== session) return
  d.session = null
  clearTimeout(d.timer)
  d.cut += d.waiting.length + (d.inflight ? 1 : 0)
  d.waiting = []
  d.inflight = null
  if (!stopping) void connect(d, now())
}

function trySend(d) {
  if (!d.session || d.inflight || d.waiting.length === 0) return
  const dueAt = d.waiting.shift()
  d.packetId = (d.packetId % 65_535) + 1
  const packet = Buffer.alloc(d.layout.size)
  d.layout.write(packet, 0, d.packetId)
  d.inflight = { dueAt, packetId: d.packetId }
  d.session.socket.write(packet)
}

function onPuback(d, packetId) {
  if (!d.inflight || d.inflight.packetId !== packetId) return
  if (d.samples.length < MAX_SAMPLES) d.samples.push([d.inflight.dueAt, now()])
  d.inflight = null
  trySend(d)
}

function tick(d) {
  if (!d.session || stopping) return
  const t = now()
  while (d.nextDueAt <= t) {
    d.waiting.push(d.nextDueAt)
    d.nextDueAt += d.intervalMs
  }
  trySend(d)
  d.timer = setTimeout(() => tick(d), Math.max(1, d.nextDueAt - now()))
}

function figures(latencies) {
  const [p50, p99] = percentiles(latencies, [0.5, 0.99])
  const max = latencies.length ? Math.max(...latencies) : null
  return { count: latencies.length, p50Ms: p50, p99Ms: p99, maxMs: max }
}

/** Latency of the messages due within [from, to]; those still waiting count as late as they are now. */
function stats(from, to, lostSince) {
  const t = now()
  const all = []
  const perDevice = {}
  for (const d of devices) {
    const mine = []
    for (const [dueAt, ackAt] of d.samples) if (dueAt >= from && dueAt <= to) mine.push(ackAt - dueAt)
    for (const dueAt of [...d.waiting, ...(d.inflight ? [d.inflight.dueAt] : [])])
      if (dueAt >= from && dueAt <= to) mine.push(t - dueAt)
    all.push(...mine)
    perDevice[d.id] = {
      kind: d.kind,
      ...figures(mine),
      reconnects: d.reconnects.filter((r) => r.lostAt >= (lostSince ?? from)),
      cut: d.cut,
    }
  }
  return { ...figures(all), perDevice }
}

serveParent(
  {
    async init({ config }) {
      const intervalMs = 1000 / config.ratePerSecond
      devices = config.devices.map((spec) => makeDevice(spec, intervalMs))
      await Promise.all(devices.map((d) => connect(d)))
      send({ type: 'ready' })
    },
    stats({ from, to, lostSince }) {
      send({ type: 'stats', ...stats(from, to, lostSince) })
    },
    exit() {
      stopping = true
      for (const d of devices) {
        clearTimeout(d.timer)
        d.session?.socket.end(DISCONNECT_PACKET)
      }
      setTimeout(() => process.exit(0), 200)
    },
  },
  { maxLifeMs: 60 * 60_000 },
)
