/** Turns what the processes of one trial reported into the figures of one table row. */
import { bitsFromBase64, countAndNot } from './bitset.mjs'
import { percentiles } from './stats.mjs'

const round = (x, digits = 2) =>
  x === null || x === undefined || !Number.isFinite(x) ? null : Number(x.toFixed(digits))

export function trialFigures({
  load,
  reports,
  result,
  cpu,
  diskWriteBytes = null,
  memory,
  startup,
  drain,
  logCounts,
  idle,
  restart,
}) {
  const sent = sum(reports.map((r) => r.sent))
  const acked = sum(reports.map((r) => r.acked))
  let ackedLost = null
  if (load.qos > 0) {
    ackedLost = 0
    for (const r of reports) {
      const received = result.receivedBits?.[r.id]
      ackedLost += countAndNot(
        bitsFromBase64(r.ackedBits),
        received ? bitsFromBase64(received) : new Uint8Array(0),
      )
    }
  }
  const firstSend = Math.min(...reports.map((r) => r.firstSend).filter((t) => t > 0))
  const spanSeconds = (result.last - firstSend) / 1e6
  const sendSeconds = Math.max(...reports.map((r) => r.wallMs)) / 1000
  const [p50, p99, p999, max] = result.latencyMicros ?? []
  const delivered = result.received
  const per10k = (seconds) => (delivered > 0 && seconds !== null ? (seconds / delivered) * 10_000 : null)
  return {
    sent,
    acked: load.qos > 0 ? acked : null,
    delivered,
    deliveredPerSec: round(spanSeconds > 0 ? delivered / spanSeconds : null, 0),
    acceptedPerSec: load.qos > 0 ? round(acked / sendSeconds, 0) : null,
    ackedLost,
    notAcked: load.qos > 0 ? sent - acked : null,
    lost: sent - delivered,
    duplicates: result.duplicates,
    latencyMs: { p50: ms(p50), p99: ms(p99), p999: ms(p999), max: ms(max) },
    ackRttMs: ackRtt(reports),
    cpu: {
      edgeSeconds: round(cpu.edge, 2),
      cloudSeconds: round(cpu.cloud, 2),
      edgePer10k: round(per10k(cpu.edge), 3),
      pairPer10k: round(per10k(cpu.edge !== null && cpu.cloud !== null ? cpu.edge + cpu.cloud : null), 3),
    },
    disk: {
      writeBytes: diskWriteBytes,
      kibPer1k: round(
        diskWriteBytes !== null && delivered > 0 ? diskWriteBytes / 1024 / (delivered / 1000) : null,
        1,
      ),
    },
    memory,
    startup,
    drain,
    harness: {
      publisherMaxCore: round(Math.max(...reports.map((r) => r.cpuMicros / 1000 / Math.max(r.wallMs, 1))), 2),
      subscriberCore: round(spanSeconds > 0 ? result.cpuMicros / 1e6 / spanSeconds : null, 2),
    },
    disconnects: sum(reports.map((r) => r.disconnects)),
    stalled: reports.some((r) => r.stalled),
    errors: reports.flatMap((r) => r.errors).slice(0, 5),
    logCounts,
    idle,
    ...(restart && { restart }),
    foreign: result.foreign,
    envelope: envelopeFigures(result.envelope),
  }
}

/**
 * What the subscriber checked of the gateway's envelopes (null for Mosquitto,
 * whose payloads are raw): `signatureFailures` counts every sampled message the
 * project's consumer refused or opened to other bytes, every HPKE body the
 * subscriber could not open, and samples left unresolved; it must be 0.
 */
function envelopeFigures(e) {
  if (!e || e.envelopes === 0) return null
  return {
    ...e,
    signatureFailures: e.verifyFailures + e.hpkeFailures + e.unresolved,
  }
}

/**
 * Serial loads: the PUBACK round trip at the device (PUBLISH written to PUBACK read, one
 * message in flight), over every acknowledged message; null for the other loads.
 */
function ackRtt(reports) {
  const all = reports.flatMap((r) => r.ackRttMicros ?? [])
  if (!reports.some((r) => r.ackRttMicros)) return null
  const [p50, p99, p999, max] = percentiles(all, [0.5, 0.99, 0.999, 1])
  return { n: all.length, p50: ms(p50), p99: ms(p99), p999: ms(p999), max: ms(max) }
}

function sum(xs) {
  return xs.reduce((a, b) => a + b, 0)
}

function ms(micros) {
  return micros === null || micros === undefined ? null : round(micros / 1000, 3)
}
