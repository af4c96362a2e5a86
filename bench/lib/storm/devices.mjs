/**
 * One kind of storm device (password over plain TCP, or TLS-PSK), a child
 * process of bench/storm.mjs. Every device holds one MQTT session; on `storm`
 * each device that has none connects (at most `concurrency` CONNECTs in
 * flight), publishes one QoS 1 message and keeps the session, and the reply
 * says, per device, when its CONNACK and its PUBACK came.
 *
 * A refused or failed attempt is tried again after RETRY_MS (a device does not
 * give up), until the storm's deadline; a CONNACK that does not come within
 * `connackTimeoutMs` (mqtt.js's default connectTimeout, 30 s) counts as a
 * failed attempt, as a device would give up on it and reconnect.
 *
 * Times are epoch milliseconds (performance.timeOrigin + performance.now()),
 * one clock for every process of the run.
 *
 * IPC: init -> ready; storm { deadlineMs } -> stormed; drop -> dropped
 * (every socket destroyed without DISCONNECT, as a network outage would);
 * status -> status; exit.
 */
import { send, serveParent } from '../child.mjs'
import { connectMqtt } from '../connect.mjs'
import { DISCONNECT_PACKET, PINGREQ_PACKET, PUBACK, publishLayout } from '../mqtt-wire.mjs'

const RETRY_MS = 250
const PAYLOAD_BYTES = 64
const KEEPALIVE_SECONDS = 120
const now = () => performance.timeOrigin + performance.now()

let config
let devices = []

function makeDevice(spec) {
  return { ...spec, session: null, layout: publishLayout(`devices/${spec.id}/storm`, 1, PAYLOAD_BYTES) }
}

/** Each device connects from its own loopback address, as devices on a LAN are hosts of their own. */
function localAddressOf(d) {
  const i = devices.indexOf(d)
  return `127.${config.kind === 'psk' ? 41 : 42}.${Math.floor(i / 250)}.${(i % 250) + 1}`
}

function endpointOf(d) {
  d.localAddress ??= localAddressOf(d)
  const { localAddress } = d
  return config.kind === 'psk'
    ? { transport: 'psk', host: '127.0.0.1', port: config.port, psk: d.psk, localAddress }
    : { transport: 'tcp', host: '127.0.0.1', port: config.port, localAddress }
}

function fieldsOf(d) {
  return config.kind === 'psk'
    ? { clientId: d.id, keepalive: KEEPALIVE_SECONDS }
    : { clientId: d.id, username: d.id, password: d.password, keepalive: KEEPALIVE_SECONDS }
}

/** Publishes one QoS 1 message on the device's session; resolves at its PUBACK (or rejects on close/timeout). */
function publishOnce(d, timeoutMs) {
  return new Promise((resolve, reject) => {
    const { session } = d
    const packet = Buffer.alloc(d.layout.size)
    d.layout.write(packet, 0, 1)
    const timer = setTimeout(() => finish(new Error(`no PUBACK within ${timeoutMs} ms`)), timeoutMs)
    const onClose = () => finish(new Error('connection closed before PUBACK'))
    function finish(err) {
      clearTimeout(timer)
      session.socket.off('close', onClose)
      session.setHandler(null)
      if (err) reject(err)
      else resolve(now())
    }
    session.setHandler((type) => {
      if (type === PUBACK) finish()
    })
    session.socket.once('close', onClose)
    session.socket.write(packet)
  })
}

async function stormDevice(d, deadline, outcome) {
  while (now() < deadline) {
    outcome.attempts++
    const started = now()
    try {
      const session = await connectMqtt(endpointOf(d), fieldsOf(d), config.connackTimeoutMs)
      outcome.connackAt = now()
      outcome.connackMs = outcome.connackAt - started
      session.socket.on('error', () => undefined)
      d.session = session
      session.socket.once('close', () => {
        if (d.session === session) d.session = null
      })
      outcome.pubackAt = await publishOnce(d, Math.max(1, deadline - now()))
      return
    } catch (err) {
      const reason = err instanceof Error ? err.message.replace(/\d+ ms/, 'N ms') : String(err)
      outcome.errors[reason] = (outcome.errors[reason] ?? 0) + 1
      d.session?.socket.destroy()
      d.session = null
      await new Promise((r) => setTimeout(r, RETRY_MS))
    }
  }
}

async function storm({ deadlineMs }) {
  const releasedAt = now()
  const deadline = releasedAt + deadlineMs
  const outcomes = devices.map(() => ({
    attempts: 0,
    connackAt: null,
    connackMs: null,
    pubackAt: null,
    errors: {},
  }))
  let next = 0
  async function worker() {
    while (next < devices.length) {
      const i = next++
      if (devices[i].session && !devices[i].session.socket.destroyed) {
        // Still connected (its session survived): not part of this storm.
        outcomes[i].kept = true
        continue
      }
      await stormDevice(devices[i], deadline, outcomes[i])
    }
  }
  await Promise.all(Array.from({ length: Math.min(config.concurrency, devices.length) }, worker))
  return { releasedAt, outcomes }
}

function drop() {
  let dropped = 0
  for (const d of devices) {
    if (d.session) {
      d.session.socket.destroy()
      d.session = null
      dropped++
    }
  }
  return dropped
}

serveParent(
  {
    init({ config: c }) {
      config = c
      devices = c.devices.map(makeDevice)
      setInterval(
        () => {
          for (const d of devices)
            if (d.session && !d.session.socket.destroyed) d.session.socket.write(PINGREQ_PACKET)
        },
        (KEEPALIVE_SECONDS * 1000) / 2,
      ).unref()
      send({ type: 'ready', devices: devices.length })
    },
    async storm(message) {
      send({ type: 'stormed', ...(await storm(message)) })
    },
    drop() {
      send({ type: 'dropped', dropped: drop() })
    },
    status() {
      send({ type: 'status', open: devices.filter((d) => d.session && !d.session.socket.destroyed).length })
    },
    exit() {
      for (const d of devices) d.session?.socket.end(DISCONNECT_PACKET)
      setTimeout(() => process.exit(0), 200)
    },
  },
  { maxLifeMs: 60 * 60_000 },
)
