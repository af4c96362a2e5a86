/**
 * Bytes on the wire per LAN mode, counted by a TCP relay between one device and
 * the edge (TLS records and all): per connect (TCP payload up to the CONNACK)
 * and per message (QoS 1 PUBLISH + PUBACK, and QoS 0 PUBLISH, 64-byte reading).
 * TCP/IP headers are not counted; they are the same for both systems.
 */
import { connect, createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { connectMqtt } from './connect.mjs'
import { DISCONNECT_PACKET, PUBACK, publishLayout } from './mqtt-wire.mjs'
import { stampedPayload } from './payload.mjs'
import { createSealer } from './sealer.mjs'
import { connectFields, lanEndpoint } from './systems.mjs'

const MESSAGES = 100
const PAYLOAD_BYTES = 64
const SETTLE_MS = 100

function startRelay(targetPort) {
  const counts = { up: 0, down: 0 }
  const sockets = new Set()
  const server = createServer((client) => {
    const upstream = connect({ host: '127.0.0.1', port: targetPort })
    client.setNoDelay(true)
    upstream.setNoDelay(true)
    sockets.add(client).add(upstream)
    client.on('data', (chunk) => {
      counts.up += chunk.length
      upstream.write(chunk)
    })
    upstream.on('data', (chunk) => {
      counts.down += chunk.length
      client.write(chunk)
    })
    const closeBoth = () => {
      client.destroy()
      upstream.destroy()
    }
    for (const s of [client, upstream]) s.on('close', closeBoth).on('error', closeBoth)
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      resolve({
        port: server.address().port,
        counts,
        take() {
          const out = { up: counts.up, down: counts.down, total: counts.up + counts.down }
          counts.up = 0
          counts.down = 0
          return out
        },
        close() {
          for (const s of sockets) s.destroy()
          return new Promise((r) => server.close(() => r()))
        },
      })
    })
  })
}

/** Measures one edge that is already accepting connections. */
export async function measureWireBytes(edge, device) {
  const relay = await startRelay(lanEndpoint(edge, device).port)
  try {
    const endpoint = { ...lanEndpoint(edge, device), port: relay.port }
    const session = await connectMqtt(endpoint, connectFields(edge, device, `${device.id}-wire`))
    await sleep(SETTLE_MS)
    const perConnect = relay.take()
    const sealed = edge.setup.sealed === true
    const topic = `devices/${device.id}/${sealed ? 'sealed' : 'data'}`
    const seal = sealed ? await createSealer({ ...device.payload, topic }) : null
    let seq = 0
    const packet = (qos, id) => {
      let payload = stampedPayload(PAYLOAD_BYTES, 0, 0, seq++)
      if (seal) payload = seal(payload, seq)
      const layout = publishLayout(topic, qos, payload.length)
      const buf = Buffer.allocUnsafe(layout.size)
      payload.copy(buf, layout.write(buf, 0, id))
      return buf
    }
    let acked = null
    session.setHandler((type) => {
      if (type === PUBACK) acked?.()
    })
    for (let i = 1; i <= MESSAGES; i++) {
      const done = new Promise((resolve) => {
        acked = resolve
      })
      session.socket.write(packet(1, i))
      await done
    }
    await sleep(SETTLE_MS)
    const q1 = relay.take()
    // One write per message, a moment apart, as a device sends them (no coalescing into one TLS record).
    for (let i = 0; i < MESSAGES; i++) {
      session.socket.write(packet(0, 0))
      await sleep(1)
    }
    await sleep(SETTLE_MS)
    const q0 = relay.take()
    session.socket.end(DISCONNECT_PACKET)
    const per = (x) => Math.round((x / MESSAGES) * 10) / 10
    return {
      connect: perConnect,
      qos1PerMessage: { up: per(q1.up), down: per(q1.down), total: per(q1.total) },
      qos0PerMessage: { up: per(q0.up), down: per(q0.down), total: per(q0.total) },
      payloadBytes: sealed ? seal(stampedPayload(PAYLOAD_BYTES, 0, 0, 0), 1).length : PAYLOAD_BYTES,
    }
  } finally {
    await relay.close()
  }
}
