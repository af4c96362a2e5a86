/** Turns what the storm's processes reported into figures, and the figures into a side-by-side table. */
import { percentiles } from '../stats.mjs'

const round = (x, digits = 1) =>
  x === null || x === undefined || !Number.isFinite(x) ? null : Number(x.toFixed(digits))

/** One kind's storm: `{ releasedAt, outcomes }` from bench/lib/storm/devices.mjs, `t0` the restart (or release). */
export function kindFigures(reply, t0) {
  const kept = reply.outcomes.filter((o) => o.kept).length
  const stormed = reply.outcomes.filter((o) => !o.kept)
  const done = stormed.filter((o) => o.pubackAt !== null)
  const errors = {}
  for (const o of reply.outcomes)
    for (const [reason, n] of Object.entries(o.errors)) errors[reason] = (errors[reason] ?? 0) + n
  const [connackP50, connackP99] = percentiles(
    done.map((o) => o.connackMs),
    [0.5, 0.99],
  )
  const [doneP50, doneP99] = percentiles(
    done.map((o) => o.pubackAt - t0),
    [0.5, 0.99],
  )
  const last = done.length ? Math.max(...done.map((o) => o.pubackAt)) : null
  return {
    devices: reply.outcomes.length,
    kept,
    published: done.length,
    failed: stormed.length - done.length,
    retried: stormed.filter((o) => o.attempts > 1).length,
    connackP50Ms: round(connackP50),
    connackP99Ms: round(connackP99),
    pubackP50Ms: round(doneP50),
    pubackP99Ms: round(doneP99),
    lastPubackMs: last === null ? null : round(last - t0),
    lastPubackAt: last,
    errors,
  }
}

/** The steady devices' latency; with `t0`, when each kind had its session back, in ms after `t0`. */
export function steadyFigures(stats, t0) {
  const out = {
    count: stats.count,
    p50Ms: round(stats.p50Ms),
    p99Ms: round(stats.p99Ms),
    maxMs: round(stats.maxMs),
  }
  if (t0 === undefined) return out
  out.backAfterMs = {}
  for (const d of Object.values(stats.perDevice)) {
    const r = d.reconnects.at(-1)
    out.backAfterMs[d.kind] = r ? round(r.connectedAt - t0) : null
  }
  return out
}

const cell = (v) => (v === null || v === undefined ? '-' : String(v))

/** Rows of one phase, a column per system. */
export function formatTable(results) {
  const lines = []
  const width = 34
  const col = 20
  const header = ['', ...results.map((r) => r.name)]
  const row = (label, values) =>
    lines.push(label.padEnd(width) + values.map((v) => cell(v).padStart(col)).join(''))
  lines.push(
    header[0].padEnd(width) +
      header
        .slice(1)
        .map((h) => h.padStart(col))
        .join(''),
  )
  row(
    'steady p99 PUBACK ms, before',
    results.map((r) => r.before?.p99Ms),
  )
  for (const phase of ['reconnect', 'restart']) {
    if (!results.some((r) => r[phase])) continue
    lines.push(
      `-- ${phase === 'restart' ? 'edge restart (from spawn)' : 'reconnect without restart (from release)'}`,
    )
    row(
      '  edge listening after ms',
      results.map((r) => r[phase]?.listeningMs),
    )
    row(
      '  last device PUBACK ms',
      results.map((r) => r[phase]?.lastPubackMs),
    )
    for (const kind of ['password', 'psk']) {
      const label = kind === 'psk' ? 'TLS-PSK' : 'password'
      row(
        `  ${label} CONNACK p50/p99 ms`,
        results.map((r) => pair(r[phase]?.[kind]?.connackP50Ms, r[phase]?.[kind]?.connackP99Ms)),
      )
      row(
        `  ${label} PUBACK p50/p99 ms`,
        results.map((r) => pair(r[phase]?.[kind]?.pubackP50Ms, r[phase]?.[kind]?.pubackP99Ms)),
      )
      row(
        `  ${label} failed / retried`,
        results.map((r) => pair(r[phase]?.[kind]?.failed, r[phase]?.[kind]?.retried)),
      )
    }
    row(
      '  steady p99 PUBACK ms, during',
      results.map((r) => r[phase]?.steady?.p99Ms),
    )
    row(
      '  steady max PUBACK ms, during',
      results.map((r) => r[phase]?.steady?.maxMs),
    )
    if (phase === 'restart') {
      row(
        '  steady password back after ms',
        results.map((r) => r[phase]?.steady?.backAfterMs?.password),
      )
      row(
        '  steady TLS-PSK back after ms',
        results.map((r) => r[phase]?.steady?.backAfterMs?.psk),
      )
    }
    row(
      '  edge CPU s',
      results.map((r) => r[phase]?.edgeCpuSeconds),
    )
  }
  return lines.join('\n')
}

function pair(a, b) {
  return a === undefined && b === undefined ? '-' : `${cell(a)} / ${cell(b)}`
}

export { round }
