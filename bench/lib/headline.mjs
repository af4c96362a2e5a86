/**
 * The figures a reader asks for first, taken from the 2-core TLS-PSK rows:
 * lossless QoS 1 throughput (closed loop), acknowledged-and-lost under flood,
 * p99 at 2,000 msg/s, CPU per message, peak memory.
 */

import { goals } from './goals.mjs'
import { FULL_PATH_GROUP, PSK_GROUP as GROUP } from './plan.mjs'

function find(rows, load, setup, group = GROUP) {
  return rows.find((r) => r.group === group && r.load === load && r.setup === setup)
}

const med = (row, field) => row?.summary?.[field]?.median ?? null
const range = (row, field) => {
  const s = row?.summary?.[field]
  return s ? [s.min, s.max] : null
}
const ratio = (a, b) => (a === null || b === null || b === 0 ? null : Math.round((a / b) * 100) / 100)

/** `extras`: what the goals need beyond the rows (bench/lib/goals.mjs). */
export function headline(rows, extras = {}) {
  const pair = (load) => ({ m: find(rows, load, 'mosquitto-psk'), g: find(rows, load, 'gateway-psk') })
  const closed = pair('closed-q1-64')
  const flood = pair('flood-q1-64')
  const rate = pair('rate-q1-64')
  const both = rows.filter((r) => r.group === GROUP)
  const peak = (system) => {
    const values = both.filter((r) => r.setup.startsWith(system)).map((r) => r.summary.edgePeakMiB?.max ?? 0)
    return values.length > 0 ? Math.max(...values) : null
  }
  const gatewayCpu = med(rate.g, 'edgeCpuPer10k')
  return {
    losslessQos1: {
      load: 'closed-q1-64 (TLS-PSK, <= 100 in flight)',
      gatewayPerSec: med(closed.g, 'deliveredPerSec'),
      mosquittoPerSec: med(closed.m, 'deliveredPerSec'),
      ratioGatewayToMosquitto: ratio(med(closed.g, 'deliveredPerSec'), med(closed.m, 'deliveredPerSec')),
    },
    floodAckedLost: {
      load: `flood-q1-64 (TLS-PSK, bursts of ${flood.g ? flood.g.loadSpec.maxPerPublisher * 4 : '-'} messages)`,
      gateway: { median: med(flood.g, 'ackedLost'), range: range(flood.g, 'ackedLost') },
      mosquitto: { median: med(flood.m, 'ackedLost'), range: range(flood.m, 'ackedLost') },
    },
    p99At2000: {
      load: 'rate-q1-64 (TLS-PSK, 2,000 msg/s)',
      gatewayMs: med(rate.g, 'p99Ms'),
      mosquittoMs: med(rate.m, 'p99Ms'),
    },
    cpuPer10kAt2000: {
      load: 'rate-q1-64 (TLS-PSK, 2,000 msg/s), CPU seconds per 10,000 messages',
      gatewayProcess: gatewayCpu,
      mosquittoEdge: med(rate.m, 'edgeCpuPer10k'),
      mosquittoPair: med(rate.m, 'pairCpuPer10k'),
      gatewayPlusCloud: med(rate.g, 'pairCpuPer10k'),
      ratioGatewayToMosquittoEdge: ratio(gatewayCpu, med(rate.m, 'edgeCpuPer10k')),
      ratioGatewayToMosquittoPair: ratio(gatewayCpu, med(rate.m, 'pairCpuPer10k')),
    },
    peakMemoryMiB: { gateway: peak('gateway'), mosquittoEdge: peak('mosquitto') },
    fullPath: fullPath(rows),
    goals: goals(rows, extras),
  }
}

/** Issue 5: per setup of the full-path group, lossless QoS 1 throughput and what 2,000 msg/s offered gives. */
function fullPath(rows) {
  const setups = [...new Set(rows.filter((r) => r.group === FULL_PATH_GROUP).map((r) => r.setup))]
  return setups.map((setup) => {
    const closed = find(rows, 'closed-q1-64', setup, FULL_PATH_GROUP)
    const rate = find(rows, 'rate-q1-64', setup, FULL_PATH_GROUP)
    const any = closed ?? rate
    return {
      setup,
      what: `${any.system}, ${any.lan}, ${any.uplink}`,
      closedPerSec: med(closed, 'deliveredPerSec'),
      closedCpuPer10k: med(closed, 'edgeCpuPer10k'),
      at2000: {
        deliveredPerSec: med(rate, 'deliveredPerSec'),
        p50Ms: med(rate, 'p50Ms'),
        p99Ms: med(rate, 'p99Ms'),
        edgeCpuPer10k: med(rate, 'edgeCpuPer10k'),
      },
      signatureFailures: [closed, rate].reduce((a, r) => a + (r?.summary?.signatureFailures?.sum ?? 0), 0),
      verified: [closed, rate].reduce((a, r) => a + (r?.summary?.verified?.sum ?? 0), 0),
    }
  })
}

export function formatHeadline(h) {
  const n = (x) =>
    x === null || x === undefined
      ? '-'
      : String(Math.abs(x) >= 100 ? Math.round(x) : Math.round(x * 100) / 100)
  const r = (x) => (x ? ` (${x[0]}-${x[1]})` : '')
  return [
    `lossless QoS 1 (closed loop, TLS-PSK): gateway ${n(h.losslessQos1.gatewayPerSec)} msg/s, Mosquitto ${n(h.losslessQos1.mosquittoPerSec)} msg/s, ratio ${n(h.losslessQos1.ratioGatewayToMosquitto)}`,
    `acknowledged-and-lost, ${h.floodAckedLost.load}: gateway ${n(h.floodAckedLost.gateway.median)}${r(h.floodAckedLost.gateway.range)}, Mosquitto ${n(h.floodAckedLost.mosquitto.median)}${r(h.floodAckedLost.mosquitto.range)}`,
    `p99 at 2,000 msg/s: gateway ${n(h.p99At2000.gatewayMs)} ms, Mosquitto ${n(h.p99At2000.mosquittoMs)} ms`,
    `CPU s per 10,000 msgs at 2,000 msg/s: gateway process ${n(h.cpuPer10kAt2000.gatewayProcess)}, Mosquitto edge ${n(h.cpuPer10kAt2000.mosquittoEdge)}, Mosquitto pair ${n(h.cpuPer10kAt2000.mosquittoPair)}; gateway/edge ${n(h.cpuPer10kAt2000.ratioGatewayToMosquittoEdge)}x, gateway/pair ${n(h.cpuPer10kAt2000.ratioGatewayToMosquittoPair)}x`,
    `peak resident memory (any 2-core TLS-PSK load): gateway ${n(h.peakMemoryMiB.gateway)} MiB, Mosquitto edge ${n(h.peakMemoryMiB.mosquittoEdge)} MiB`,
    ...h.fullPath.map(
      (f) =>
        `full path, ${f.what}: closed loop ${n(f.closedPerSec)} msg/s (${n(f.closedCpuPer10k)} CPU s/10k); ` +
        `2,000/s offered: ${n(f.at2000.deliveredPerSec)} msg/s delivered, p50 ${n(f.at2000.p50Ms)} ms, p99 ${n(f.at2000.p99Ms)} ms, ` +
        `${n(f.at2000.edgeCpuPer10k)} CPU s/10k` +
        (f.setup.startsWith('gateway') ? `; verified ${f.verified}, failed ${f.signatureFailures}` : ''),
    ),
  ].join('\n')
}
