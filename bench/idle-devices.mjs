/**
 * Connected devices that say nothing, run by bench/run.mjs as a child process:
 * opens one MQTT session per device (a few at a time), keeps them alive with
 * PINGREQ, and closes them all on `exit`.
 */
import { send, serveParent } from './lib/child.mjs'
import { connectMqtt } from './lib/connect.mjs'
import { DISCONNECT_PACKET, PINGREQ_PACKET } from './lib/mqtt-wire.mjs'

const KEEPALIVE_SECONDS = 60
const sessions = []

async function connectAll({ endpoint, devices, concurrency }) {
  const started = Date.now()
  let next = 0
  let failed = 0
  const errors = []
  async function worker() {
    while (next < devices.length) {
      const device = devices[next++]
      try {
        const session = await connectMqtt(
          { ...endpoint, ...(device.psk && { psk: device.psk }) },
          {
            clientId: device.clientId,
            username: device.username,
            password: device.password,
            keepalive: KEEPALIVE_SECONDS,
          },
        )
        session.socket.on('error', () => undefined)
        sessions.push(session)
      } catch (err) {
        failed++
        if (errors.length < 3) errors.push(err.message)
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  setInterval(
    () => {
      for (const { socket } of sessions) if (!socket.destroyed) socket.write(PINGREQ_PACKET)
    },
    (KEEPALIVE_SECONDS * 1000) / 2,
  ).unref()
  return { connected: sessions.length, failed, errors, elapsedMs: Date.now() - started }
}

serveParent({
  async init({ config }) {
    send({ type: 'ready', ...(await connectAll(config)) })
  },
  status() {
    send({ type: 'status', open: sessions.filter((s) => !s.socket.destroyed).length })
  },
  exit() {
    for (const { socket } of sessions) socket.end(DISCONNECT_PACKET)
    setTimeout(() => process.exit(0), 100)
  },
})
