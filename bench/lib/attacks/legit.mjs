/**
 * The legitimate load, a child process: two password devices on the plain TCP
 * listener (from 127.0.0.1) publishing QoS 1 at a fixed rate with one message
 * in flight each, for the whole run, and the TLS-PSK device's connect probe.
 *
 * Latency is counted from when a message was due, not from when it could be
 * sent: a device at 50 msg/s whose previous message is not acknowledged yet
 * waits, and that wait is part of what it experiences (no coordinated
 * omission). Due messages wait in a queue of at most MAX_WAITING; older ones
 * are given up and counted as missed, like a message that was in flight when
 * the connection closed. A missed message counts as an infinite latency in
 * its phase's percentiles, so a phase where more than 1 % are missed has no
 * finite p99.
 *
 * Every acknowledged message's counter is recorded with the phase it was due
 * in, so the parent can tell, per attack, which acknowledged messages never
 * reached the cloud.
 *
 * IPC: init -> ready; phase { index } -> phased; stats { index } -> stats;
 * probe -> probed (PSK device connect); reconnect -> reconnected; stop -> stopped.
 */
import { send, serveParent } from '../child.mjs'
import { connectMqtt } from '../connect.mjs'
import { DISCONNECT_PACKET, PUBACK, publishLayout } from '../mqtt-wire.mjs'
import { filler, STAMP_BYTES, writeStamp } from '../payload.mjs'
import { percentiles } from '../stats.mjs'

const PAYLOAD_BYTES = 64
/** Stamp "trial" of every legitimate message. */
const LEGIT_TRIAL = 1
/** Due messages a device holds while it cannot send (10 s at 50 msg/s), at most. */
const MAX_WAITING = 500
const RECONNECT_DELAY_MS = 1_000
/** Connection attempts per device in a run, at most (one a second while refused). */
const MAX_CONNECT_ATTEMPTS = 3_600

let config
let devices = []
let current = 0
const phases = []
let stopping = false
let timer = null

function phaseFigures(index) {
  if (!phases[index]) phases[index] = { due: 0, acked: 0, missed: 0, latencies: [], service: [], events: [] }
  return phases[index]
}

function makeDevice(spec, intervalMs, offsetMs) {
  const topic = `devices/${spec.id}/telemetry`
  return {
    ...spec,
    topic,
    layout: publishLayout(topic, 1, PAYLOAD_BYTES),
    filler: filler(PAYLOAD_BYTES),
    intervalMs,
    nextDueAt: performance.now() + offsetMs,
    waiting: [],
    inflight: null,
    conn: null,
    connecting: false,
    counter: 0,
    packetId: 0,
    acked: new Uint8Array(spec.maxCounter),
    disconnects: 0,
    connectAttempts: 0,
    leaving: false,
    refusals: {},
  }
}

async function connectDevice(d) {
  if (d.connecting || d.conn || stopping) return { ok: d.conn !== null }
  if (d.connectAttempts++ >= MAX_CONNECT_ATTEMPTS) return { ok: false, error: 'too many connection attempts' }
  d.connecting = true
  const started = performance.now()
  try {
    const conn = await connectMqtt(
      { transport: 'tcp', host: '127.0.0.1', port: config.tcpPort },
      { clientId: d.id, username: d.id, password: d.password, keepalive: 30 },
      5_000,
    )
    d.conn = conn
    conn.setHandler((type, _flags, body) => {
      if (type === PUBACK) onPuback(d, body.readUInt16BE(0))
    })
    conn.socket.once('close', () => onClose(d, conn))
    trySend(d)
    return { ok: true, ms: performance.now() - started }
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err)
    d.refusals[reason] = (d.refusals[reason] ?? 0) + 1
    phaseFigures(current).events.push(`${d.id}: connect failed: ${reason}`)
    setTimeout(() => void connectDevice(d), RECONNECT_DELAY_MS).unref()
    return { ok: false, ms: performance.now() - started, error: reason }
  } finally {
    d.connecting = false
  }
}

function onClose(d, conn) {
  if (d.conn !== conn) return
  d.conn = null
  if (d.inflight) {
    phaseFigures(d.inflight.phase).missed++
    d.inflight = null
  }
  if (stopping || d.leaving) return
  d.disconnects++
  phaseFigures(current).events.push(`${d.id}: disconnected by the gateway`)
  setTimeout(() => void connectDevice(d), RECONNECT_DELAY_MS).unref()
}

function trySend(d) {
  if (!d.conn || d.inflight || d.waiting.length === 0 || d.leaving) return
  if (d.counter >= d.acked.length) return
  const due = d.waiting.shift()
  const buf = Buffer.allocUnsafe(d.layout.size)
  d.packetId = (d.packetId % 65_535) + 1
  const at = d.layout.write(buf, 0, d.packetId)
  const now = performance.now()
  writeStamp(buf, at, LEGIT_TRIAL, d.index, d.counter, now * 1000)
  d.filler.copy(buf, at + STAMP_BYTES)
  d.inflight = { ...due, counter: d.counter++, packetId: d.packetId, sentAt: now }
  d.conn.socket.write(buf)
}

function onPuback(d, packetId) {
  const f = d.inflight
  if (!f || f.packetId !== packetId) return
  const now = performance.now()
  const figures = phaseFigures(f.phase)
  figures.acked++
  figures.latencies.push(now - f.dueAt)
  figures.service.push(now - f.sentAt)
  d.acked[f.counter] = f.phase + 1
  d.inflight = null
  trySend(d)
}

/** Queues every message that has come due, gives up the oldest past MAX_WAITING, sends. */
function tick() {
  const now = performance.now()
  let next = Number.POSITIVE_INFINITY
  for (const d of devices) {
    while (d.nextDueAt <= now) {
      d.waiting.push({ dueAt: d.nextDueAt, phase: current })
      phaseFigures(current).due++
      d.nextDueAt += d.intervalMs
    }
    while (d.waiting.length > MAX_WAITING) phaseFigures(d.waiting.shift().phase).missed++
    trySend(d)
    next = Math.min(next, d.nextDueAt)
  }
  if (!stopping) timer = setTimeout(tick, Math.max(1, next - performance.now()))
}

function stats(index) {
  const f = phaseFigures(index)
  const now = performance.now()
  // Still waiting or in flight: at least this late so far.
  const open = []
  for (const d of devices) {
    for (const w of d.waiting) if (w.phase === index) open.push(now - w.dueAt)
    if (d.inflight?.phase === index) open.push(now - d.inflight.dueAt)
  }
  const all = [...f.latencies, ...open, ...new Array(f.missed).fill(Number.POSITIVE_INFINITY)]
  const [p50, p99] = percentiles(all, [0.5, 0.99])
  const [serviceP99] = percentiles(f.service, [0.99])
  const finite = (x) => (x === null || Number.isFinite(x) ? x : null)
  return {
    due: f.due,
    acked: f.acked,
    missed: f.missed,
    open: open.length,
    p50Ms: finite(p50),
    p99Ms: finite(p99),
    p99Unbounded: p99 === Number.POSITIVE_INFINITY,
    maxMs: f.latencies.reduce((a, b) => Math.max(a, b), 0) || null,
    serviceP99Ms: serviceP99,
    events: f.events.slice(0, 20),
    eventCount: f.events.length,
  }
}

/** The PSK device connects over TLS-PSK, is accepted, and leaves: how long it took, or why it failed. */
async function probe() {
  const started = performance.now()
  try {
    const conn = await connectMqtt(
      { transport: 'psk', host: '127.0.0.1', port: config.pskPort, psk: config.psk.psk },
      { clientId: config.psk.id, keepalive: 30 },
      5_000,
    )
    conn.socket.end(DISCONNECT_PACKET)
    return { ok: true, ms: performance.now() - started }
  } catch (err) {
    return {
      ok: false,
      ms: performance.now() - started,
      error: err instanceof Error ? err.message : String(err),
    }
  }
}

/** Each device finishes its message in flight, disconnects, and connects again (lockout check). */
async function reconnectAll() {
  return Promise.all(
    devices.map(async (d) => {
      d.leaving = true
      const deadline = performance.now() + 3_000
      while (d.inflight && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5))
      const conn = d.conn
      d.conn = null
      if (conn) {
        conn.socket.end(DISCONNECT_PACKET)
        conn.socket.destroySoon?.()
      }
      if (d.inflight) {
        phaseFigures(d.inflight.phase).missed++
        d.inflight = null
      }
      d.leaving = false
      const outcome = await connectDevice(d)
      return { id: d.id, ...outcome }
    }),
  )
}

serveParent(
  {
    async init({ config: c }) {
      config = c
      const interval = 1000 / c.ratePerSecond
      devices = c.devices.map((spec, i) => makeDevice(spec, interval, (i * interval) / c.devices.length))
      const results = await Promise.all(devices.map((d) => connectDevice(d)))
      const failed = results.find((r) => !r.ok)
      if (failed) throw new Error(`a legitimate device could not connect: ${failed.error}`)
      tick()
      send({ type: 'ready' })
    },
    phase({ index }) {
      current = index
      send({ type: 'phased', index })
    },
    stats({ index }) {
      send({ type: 'stats', index, ...stats(index) })
    },
    async probe() {
      send({ type: 'probed', ...(await probe()) })
    },
    async reconnect() {
      send({ type: 'reconnected', devices: await reconnectAll() })
    },
    async stop() {
      stopping = true
      clearTimeout(timer)
      const deadline = performance.now() + 5_000
      while (devices.some((d) => d.inflight && d.conn) && performance.now() < deadline)
        await new Promise((r) => setTimeout(r, 5))
      for (const d of devices) d.conn?.socket.end(DISCONNECT_PACKET)
      send({
        type: 'stopped',
        devices: devices.map((d) => ({
          id: d.id,
          index: d.index,
          sent: d.counter,
          disconnects: d.disconnects,
          refusals: d.refusals,
          ackedPhases: Buffer.from(d.acked.buffer, 0, d.counter).toString('base64'),
        })),
      })
    },
  },
  { maxLifeMs: 90 * 60_000 },
)
