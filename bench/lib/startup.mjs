/**
 * Start-up of an edge: time from spawn to the first CONNECT it accepts
 * (CONNACK 0, authentication included), then to the first message that
 * reaches the cloud subscriber (the bridge is up).
 */
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { connectMqtt } from './connect.mjs'
import { publishLayout } from './mqtt-wire.mjs'
import { PROBE_TRIAL, stampedPayload } from './payload.mjs'
import { connectFields, lanEndpoint } from './systems.mjs'

const RETRY_MS = 10

function logTail(file, lines = 15) {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
  } catch {
    return '(no log)'
  }
}

/** Resolves with `{ session, startupMs }` for the first accepted MQTT session of `device`. */
export async function firstAcceptedConnection(edge, device, timeoutMs = 30_000) {
  const endpoint = lanEndpoint(edge, device)
  const fields = connectFields(edge, device, `${device.id}-probe`)
  const deadline = performance.now() + timeoutMs
  let lastError
  while (performance.now() < deadline) {
    if (!edge.running()) {
      throw new Error(`${edge.name} exited during start-up. Log ${edge.logFile}:\n${logTail(edge.logFile)}`)
    }
    try {
      const session = await connectMqtt(endpoint, fields, 5_000)
      return { session, startupMs: performance.now() - edge.spawnedAt }
    } catch (err) {
      lastError = err
      await sleep(RETRY_MS)
    }
  }
  throw new Error(
    `${edge.name} accepted no connection within ${timeoutMs} ms (last error: ${lastError?.message}). ` +
      `Log ${edge.logFile}:\n${logTail(edge.logFile)}`,
  )
}

/** Publishes probes (QoS 1) every 100 ms until the subscriber sees one; resolves with ms since spawn. */
export async function firstDelivery(edge, session, subscriber, topic, timeoutMs = 30_000) {
  const layout = publishLayout(topic, 1, 64)
  let seen = false
  const off = subscriber.onMessage((m) => {
    if (m.type === 'probe') seen = true
  })
  try {
    const deadline = performance.now() + timeoutMs
    for (let n = 0; performance.now() < deadline; n++) {
      const packet = Buffer.allocUnsafe(layout.size)
      stampedPayload(64, PROBE_TRIAL, 0, n).copy(packet, layout.write(packet, 0, (n % 65_535) + 1))
      session.socket.write(packet)
      for (let i = 0; i < 10; i++) {
        if (seen) return performance.now() - edge.spawnedAt
        await sleep(10)
      }
    }
  } finally {
    off()
  }
  throw new Error(
    `no probe from ${edge.name} reached the cloud subscriber within ${timeoutMs} ms. Log ${edge.logFile}:\n${logTail(edge.logFile)}`,
  )
}

export { logTail }
