/**
 * The end of a trial: waiting for what the publishers sent to reach the cloud
 * subscriber, and deciding when a message that has not arrived is lost rather
 * than late.
 *
 * A fixed silence cannot decide that on a loaded machine: a 2 s stall of the
 * cloud broker made a 1.5 s silence count 100 acknowledged messages of a closed
 * loop as lost, and they arrived after the trial had ended (issue 11). So the
 * pipeline itself is asked. Once every publisher has reported (it has its last
 * PUBACK), a marker, a QoS 1 probe from another session of the same edge, is
 * published every MARKER_EVERY_MS until one reaches the subscriber. Both edges
 * forward in the order they accepted (the gateway's queue, Mosquitto's bridge
 * queue) and the cloud broker delivers in order to the one subscriber session,
 * so when a marker has arrived every acknowledged message that was going to
 * arrive has arrived: one still missing is lost (acked-lost), not late.
 *
 * Messages without a PUBACK (QoS 0, or a QoS 1 publish whose PUBACK never came)
 * carry no promise and may be lost legitimately; the marker does not order them
 * (they came on other connections), so after the marker the drain waits for them
 * while they keep arriving, until `quietMs` passes with nothing new.
 *
 * No clock ends the drain while the pipeline moves: the only time bound is
 * nothing at all (no new message and no marker) for STALL_CAP_MS.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { connectMqtt } from './connect.mjs'
import { DISCONNECT_PACKET, publishLayout } from './mqtt-wire.mjs'
import { PROBE_TRIAL, stampedPayload } from './payload.mjs'
import { connectFields, lanEndpoint } from './systems.mjs'

const POLL_MS = 50
const MARKER_EVERY_MS = 250
const MARKER_BYTES = 64
const STALL_CAP_MS = 90_000

/**
 * Waits until the subscriber has `sent` messages of the trial, or a marker says
 * the rest is lost. `markerId` (the trial id) tells this trial's markers from
 * the start-up probes (publisher 0) and from other trials'.
 * Resolves with `{ complete, ms, markers, why? }`.
 */
export async function waitForDrain({ edge, device, subscriber, markerId, sent, acked, quietMs }) {
  const start = performance.now()
  let markerSeen = false
  const off = subscriber.onMessage((m) => {
    if (m.type === 'probe' && m.publisher === markerId) markerSeen = true
  })
  const marker = markerSender(edge, device, markerId)
  const end = (complete, why) => ({
    complete,
    ms: Math.round(performance.now() - start),
    markers: marker.count(),
    ...(why && { why }),
  })
  try {
    let last = -1
    let lastProgress = start
    let markerArrived = false
    for (;;) {
      // Read before asking: a marker reported before this request was handled by the subscriber
      // before it, so the reply counts every message that came before the marker. A marker reported
      // while the request is out may have come after the count was taken: it counts next round.
      const markerIn = markerSeen
      const { received } = await subscriber.request({ type: 'progress' }, 'progress')
      const now = performance.now()
      if (received >= sent) return end(true)
      if (received !== last) {
        last = received
        lastProgress = now
      }
      if (markerIn && !markerArrived) {
        markerArrived = true
        lastProgress = now
      }
      if (markerArrived) {
        if (acked >= sent) {
          return end(false, 'a marker published after the last PUBACK arrived: the missing messages are lost')
        }
        if (now - lastProgress >= quietMs) {
          return end(false, `nothing new for ${quietMs} ms after the marker (messages without a PUBACK)`)
        }
      } else {
        if (now - lastProgress >= STALL_CAP_MS) {
          const error = marker.lastError()
          return end(false, `no message and no marker for ${STALL_CAP_MS} ms${error ? ` (${error})` : ''}`)
        }
        marker.maybeSend(now)
      }
      await sleep(POLL_MS)
    }
  } finally {
    off()
    marker.close()
  }
}

/** Publishes markers from a session of its own, reconnecting when the edge closes it. */
function markerSender(edge, device, markerId) {
  const layout = publishLayout(`devices/${device.id}/probe`, 1, MARKER_BYTES)
  let session = null
  let connecting = false
  let closed = false
  let nextAt = 0
  let count = 0
  let lastError = null

  function connect() {
    connecting = true
    connectMqtt(lanEndpoint(edge, device), connectFields(edge, device, `${device.id}-probe`)).then(
      (s) => {
        connecting = false
        if (closed) {
          s.socket.end(DISCONNECT_PACKET)
          return
        }
        session = s
        s.socket.once('close', () => {
          if (session === s) session = null
        })
      },
      (err) => {
        connecting = false
        lastError = `marker session: ${err.message}`
      },
    )
  }

  return {
    count: () => count,
    lastError: () => lastError,
    maybeSend(now) {
      if (now < nextAt) return
      nextAt = now + MARKER_EVERY_MS
      if (session === null) {
        if (!connecting) connect()
        return
      }
      const packet = Buffer.allocUnsafe(layout.size)
      const payload = stampedPayload(MARKER_BYTES, PROBE_TRIAL, markerId, count)
      payload.copy(packet, layout.write(packet, 0, (count % 65_535) + 1))
      count++
      session.socket.write(packet)
    },
    close() {
      closed = true
      session?.socket.end(DISCONNECT_PACKET)
    },
  }
}
