/**
 * Did every acknowledged message reach the cloud? The legitimate devices
 * report, per message counter, the phase it was due in (0: never
 * acknowledged); the attacker reports the flooder's acknowledged counters; the
 * cloud subscriber reports what it received, by device and counter.
 */
import { bitsFromBase64, countAndNot, countBits, hasBit } from '../bitset.mjs'
import { sleep } from './wire.mjs'

/** Acknowledged, received and lost per device, and acknowledged/lost per phase (legitimate devices). */
export function delivery({ legitStopped, flooderAcks, flooderIndex, received, phaseCount }) {
  const lostByPhase = new Array(phaseCount).fill(0)
  const ackedByPhase = new Array(phaseCount).fill(0)
  const devices = legitStopped.devices.map((d) => {
    const phases = Buffer.from(d.ackedPhases, 'base64')
    const bits = bitsFromBase64(received.bits[d.index])
    let acked = 0
    let lost = 0
    for (let c = 0; c < phases.length; c++) {
      if (phases[c] === 0) continue
      acked++
      ackedByPhase[phases[c] - 1]++
      if (!hasBit(bits, c)) {
        lost++
        lostByPhase[phases[c] - 1]++
      }
    }
    return {
      id: d.id,
      sent: d.sent,
      acked,
      received: received.perDevice[d.index],
      lost,
      disconnects: d.disconnects,
      refusals: d.refusals,
    }
  })
  const flooderBits = bitsFromBase64(flooderAcks.bits)
  const flooder = {
    sent: flooderAcks.sent,
    acked: countBits(flooderBits),
    received: received.perDevice[flooderIndex],
    lost: countAndNot(flooderBits, bitsFromBase64(received.bits[flooderIndex])),
  }
  const totals = devices.reduce(
    (a, x) => ({ acked: a.acked + x.acked, received: a.received + x.received, lost: a.lost + x.lost }),
    { acked: 0, received: 0, lost: 0 },
  )
  return { devices, totals, flooder, lostByPhase, ackedByPhase }
}

/**
 * Waits until the subscriber has as many messages of each device as were
 * acknowledged (`want`: index -> count), as long as it keeps receiving:
 * gives up after `stallMs` without a new message, or after `maxMs`.
 */
export async function waitDelivered(subscriber, want, { maxMs, stallMs }) {
  const started = performance.now()
  let last = -1
  let lastChange = started
  while (performance.now() - started < maxMs) {
    const p = await subscriber.request({ type: 'progress' }, 'progress')
    if ([...want].every(([i, n]) => p.perDevice[i] >= n))
      return { complete: true, ms: Math.round(performance.now() - started) }
    if (p.received !== last) {
      last = p.received
      lastChange = performance.now()
    } else if (performance.now() - lastChange > stallMs) break
    await sleep(1_000)
  }
  return { complete: false, ms: Math.round(performance.now() - started) }
}

/** index -> acknowledged count, for `waitDelivered`. */
export function acknowledgedCounts(legitStopped, flooderAcks, flooderIndex) {
  const want = new Map()
  for (const d of legitStopped.devices)
    want.set(d.index, Buffer.from(d.ackedPhases, 'base64').filter((p) => p > 0).length)
  want.set(flooderIndex, countBits(bitsFromBase64(flooderAcks.bits)))
  return want
}
