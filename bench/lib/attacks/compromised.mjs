/**
 * Attacks by an authorized, compromised device (`flooder`, correct password):
 * a QoS 1 flood, one huge PUBLISH, a flood of subscription filters, and a
 * poison message whose cloud topic cannot exist. Every message it publishes
 * carries the bench stamp (its device index and its own counter), and every
 * counter the gateway acknowledged is kept in `flooderAcked`, so the run can
 * tell which acknowledged flooder messages reached the cloud too.
 */
import mqttPacket from 'mqtt-packet'
import { createBits, setBit } from '../bitset.mjs'
import { PUBACK, publishLayout, SUBACK } from '../mqtt-wire.mjs'
import { filler, STAMP_BYTES, writeStamp } from '../payload.mjs'
import { deviceSession, publishQos1, sleep, writeAll } from './wire.mjs'

const TRIAL = 1
/** Flooder messages counted at most (the cloud subscriber's bit set has the same size). */
export const FLOODER_MAX = 8_000_000
export const flooderAcked = createBits(FLOODER_MAX)
let counter = 0
export const flooderSent = () => counter

function nextCounter() {
  return counter < FLOODER_MAX ? counter++ : -1
}

function stamped(size) {
  const payload = Buffer.alloc(size, 0x78)
  const c = nextCounter()
  writeStamp(payload, 0, TRIAL, 2, Math.max(c, 0), 0)
  return { payload, counter: c }
}

/** Connects as the flooder; on refusal, the reason is counted in `r.refusals` and null returned. */
async function connectFlooder(ctx, r, clientId) {
  try {
    const session = await deviceSession(ctx.tcpPort, ctx.address, {
      clientId,
      username: ctx.flooder.id,
      password: ctx.flooder.password,
    })
    ctx.track(session.socket)
    r.connects = (r.connects ?? 0) + 1
    return session
  } catch (err) {
    r.refusals[err.message] = (r.refusals[err.message] ?? 0) + 1
    return null
  }
}

/** Resolves at the deadline, or earlier when the session closes. */
const untilDeadlineOrClose = (ctx, session) =>
  new Promise((resolve) => {
    if (session.closed) return resolve()
    const timer = setTimeout(resolve, Math.max(0, ctx.deadline - performance.now()))
    session.socket.once('close', () => {
      clearTimeout(timer)
      resolve()
    })
  })

/**
 * (3) QoS 1 as fast as the gateway acknowledges, `window` in flight, 64-byte
 * payloads; reconnects (at most `maxConnects` times) when the gateway closes.
 */
export async function flood(ctx, { window }) {
  const r = { window, sent: 0, acked: 0, connects: 0, closedByGateway: 0, refusals: {} }
  const layout = publishLayout(`devices/${ctx.flooder.id}/flood`, 1, 64)
  const fill = filler(64)
  while (performance.now() < ctx.deadline && r.connects < 50) {
    const session = await connectFlooder(ctx, r, ctx.flooder.id)
    if (!session) {
      await sleep(200)
      continue
    }
    const inflight = new Map()
    let packetId = 0
    let blocked = false
    let scheduled = false
    const send = () => {
      scheduled = false
      if (blocked || session.closed || performance.now() >= ctx.deadline) return
      const n = window - inflight.size
      if (n <= 0) return
      const buf = Buffer.allocUnsafe(n * layout.size)
      let off = 0
      for (let k = 0; k < n; k++) {
        do packetId = (packetId % 65_535) + 1
        while (inflight.has(packetId))
        const c = nextCounter()
        if (c < 0) break
        const at = layout.write(buf, off, packetId)
        writeStamp(buf, at, TRIAL, 2, c, 0)
        fill.copy(buf, at + STAMP_BYTES)
        inflight.set(packetId, c)
        off += layout.size
      }
      r.sent += off / layout.size
      if (!session.socket.write(buf.subarray(0, off))) {
        blocked = true
        session.socket.once('drain', () => {
          blocked = false
          send()
        })
      }
    }
    session.handler = (type, _flags, body) => {
      if (type !== PUBACK) return
      const c = inflight.get(body.readUInt16BE(0))
      if (c === undefined) return
      inflight.delete(body.readUInt16BE(0))
      setBit(flooderAcked, c)
      r.acked++
      if (!scheduled) {
        scheduled = true
        setImmediate(send)
      }
    }
    send()
    await untilDeadlineOrClose(ctx, session)
    if (session.closed) {
      if (performance.now() < ctx.deadline) r.closedByGateway++
      continue
    }
    // The window's last acknowledgements, then leave.
    const settle = performance.now() + 3_000
    while (inflight.size > 0 && !session.closed && performance.now() < settle) await sleep(10)
    r.unackedAtEnd = inflight.size
    session.socket.end(Buffer.from([0xe0, 0]))
  }
  return r
}

/** Publishes one QoS 1 message and waits (until `waitMs`) for its PUBACK or the connection to close. */
async function publishOnce(session, topic, payload, c, waitMs) {
  const started = performance.now()
  const r = { outcome: null, fullyWritten: false, ms: null }
  const answer = new Promise((resolve) => {
    const timer = setTimeout(() => resolve('no answer'), waitMs)
    session.handler = (type, _flags, body) => {
      if (type === PUBACK && body.readUInt16BE(0) === 1) {
        clearTimeout(timer)
        if (c >= 0) setBit(flooderAcked, c)
        resolve('acknowledged')
      }
    }
    session.socket.once('close', () => {
      clearTimeout(timer)
      resolve('closed by the gateway')
    })
  })
  void writeAll(session.socket, publishQos1(topic, 1, payload)).then((ok) => {
    r.fullyWritten = ok
  })
  r.outcome = await answer
  r.ms = Math.round(performance.now() - started)
  return r
}

/** (4) One QoS 1 PUBLISH with a `bytes` payload. */
export async function bigPublish(ctx, { bytes }) {
  const r = { bytes, refusals: {} }
  const session = await connectFlooder(ctx, r, ctx.flooder.id)
  if (!session) return { ...r, outcome: 'could not connect' }
  const { payload, counter: c } = stamped(bytes)
  Object.assign(
    r,
    await publishOnce(session, `devices/${ctx.flooder.id}/big`, payload, c, ctx.deadline - performance.now()),
  )
  await untilDeadlineOrClose(ctx, session)
  session.socket.destroy()
  return r
}

/**
 * (7) A QoS 1 PUBLISH to a LAN topic of `topicBytes` bytes under the device's
 * own tree: valid on the LAN, but after the cloud mapping's prefix longer than
 * any MQTT topic can be (65,535 bytes).
 */
export async function poison(ctx, { topicBytes, cloudTopicBytes }) {
  const r = { topicBytes, cloudTopicBytes, refusals: {} }
  const session = await connectFlooder(ctx, r, ctx.flooder.id)
  if (!session) return { ...r, outcome: 'could not connect' }
  const head = `devices/${ctx.flooder.id}/`
  const topic = head + 'p'.repeat(topicBytes - head.length)
  const { payload, counter: c } = stamped(64)
  Object.assign(r, await publishOnce(session, topic, payload, c, 5_000))
  r.counter = c
  await untilDeadlineOrClose(ctx, session)
  session.socket.destroy()
  return r
}

/** (6) `total` subscription filters under the device's own tree, `perPacket` per SUBSCRIBE, one at a time. */
export async function subscriptions(ctx, { total, perPacket }) {
  const r = { total, perPacket, requested: 0, granted: 0, refused: 0, packets: 0, refusals: {} }
  const session = await connectFlooder(ctx, r, ctx.flooder.id)
  if (!session) return { ...r, outcome: 'could not connect' }
  let waiting = null
  session.handler = (type, _flags, body) => {
    if (type !== SUBACK || !waiting) return
    for (const code of body.subarray(2)) r[code < 0x80 ? 'granted' : 'refused']++
    waiting()
  }
  session.socket.once('close', () => waiting?.())
  for (let id = 1; r.requested < total && !session.closed && performance.now() < ctx.deadline; id++) {
    const subs = []
    for (let k = 0; k < perPacket && r.requested + k < total; k++)
      subs.push({ topic: `devices/${ctx.flooder.id}/s/${r.requested + k}`, qos: 1 })
    const answered = new Promise((resolve) => {
      const timer = setTimeout(resolve, 10_000)
      waiting = () => {
        waiting = null
        clearTimeout(timer)
        resolve()
      }
    })
    await writeAll(
      session.socket,
      mqttPacket.generate({ cmd: 'subscribe', messageId: id, subscriptions: subs }),
    )
    r.requested += subs.length
    r.packets++
    await answered
  }
  r.closedByGateway = session.closed
  await untilDeadlineOrClose(ctx, session)
  session.socket.end(Buffer.from([0xe0, 0]))
  return r
}
