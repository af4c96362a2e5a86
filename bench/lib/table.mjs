/** Medians and ranges across a row's trials, and the printed tables. */
import { PSK_GROUP } from './plan.mjs'
import { summarize } from './stats.mjs'

/** Figures summarized per row: name -> how to read it from one trial's figures. */
export const SUMMARY_FIELDS = {
  deliveredPerSec: (f) => f.deliveredPerSec,
  acceptedPerSec: (f) => f.acceptedPerSec,
  ackedLost: (f) => f.ackedLost,
  notAcked: (f) => f.notAcked,
  lost: (f) => f.lost,
  duplicates: (f) => f.duplicates,
  p50Ms: (f) => f.latencyMs.p50,
  p99Ms: (f) => f.latencyMs.p99,
  p999Ms: (f) => f.latencyMs.p999,
  ackRttP50Ms: (f) => f.ackRttMs?.p50 ?? null,
  ackRttP99Ms: (f) => f.ackRttMs?.p99 ?? null,
  edgeCpuPer10k: (f) => f.cpu.edgePer10k,
  pairCpuPer10k: (f) => f.cpu.pairPer10k,
  edgeDiskKiBPer1k: (f) => f.disk?.kibPer1k ?? null,
  edgePeakMiB: (f) => f.memory.edgePeakMiB,
  firstConnectionMs: (f) => f.startup.firstConnectionMs,
  firstDeliveryMs: (f) => f.startup.firstDeliveryMs,
  publisherMaxCore: (f) => f.harness.publisherMaxCore,
  subscriberCore: (f) => f.harness.subscriberCore,
  idleConnectMs: (f) => f.idle?.connectMs ?? null,
  idleEdgeRssMiB: (f) => f.idle?.edgeRssMiB ?? null,
  verified: (f) => f.envelope?.verified ?? null,
  signatureFailures: (f) => f.envelope?.signatureFailures ?? null,
}

export function summarizeTrials(trials) {
  const ok = trials.filter((t) => !t.error)
  const out = {}
  for (const [name, read] of Object.entries(SUMMARY_FIELDS)) out[name] = summarize(ok.map(read))
  return out
}

function num(x) {
  if (x === null || x === undefined) return '-'
  const abs = Math.abs(x)
  if (abs >= 100_000) return `${Math.round(x / 1000)}k`
  if (abs >= 10_000) return `${(x / 1000).toFixed(1)}k`
  if (abs >= 100 || Number.isInteger(x)) return String(Math.round(x))
  if (abs >= 10) return x.toFixed(1)
  if (abs >= 1) return x.toFixed(2)
  return x.toFixed(3)
}

/** "median" or "median (min-max)" when the trials differ. */
export function cell(s) {
  if (!s) return '-'
  if (s.n === 1 || s.min === s.max) return num(s.median)
  return `${num(s.median)} (${num(s.min)}-${num(s.max)})`
}

const COLUMNS = [
  ['load', (r) => r.load],
  ['system', (r) => r.system],
  ['LAN', (r) => r.lan],
  ['to cloud', (r) => r.uplink],
  ['n', (r) => `${r.okTrials}/${r.trials.length}`],
  ['delivered msg/s', (r) => cell(r.summary.deliveredPerSec)],
  ['acked msg/s', (r) => (r.qos === 0 ? '-' : cell(r.summary.acceptedPerSec))],
  ['acked-lost', (r) => (r.qos === 0 ? `qos0 lost ${cell(r.summary.lost)}` : cell(r.summary.ackedLost))],
  ['dups', (r) => cell(r.summary.duplicates)],
  ['p50 ms', (r) => cell(r.summary.p50Ms)],
  ['p99 ms', (r) => cell(r.summary.p99Ms)],
  ['p999 ms', (r) => cell(r.summary.p999Ms)],
  ['PUBACK p50/p99 ms', (r) => pubackCell(r.summary)],
  ['CPU s/10k edge', (r) => cell(r.summary.edgeCpuPer10k)],
  ['CPU s/10k edge+cloud', (r) => cell(r.summary.pairCpuPer10k)],
  ['disk KiB/1k edge', (r) => cell(r.summary.edgeDiskKiBPer1k)],
  ['peak RSS MiB', (r) => cell(r.summary.edgePeakMiB)],
  ['start ms', (r) => cell(r.summary.firstConnectionMs)],
  ['harness core', (r) => harnessCell(r.summary)],
  ['verified/failed', (r) => verifiedCell(r.summary)],
]

/** Envelopes the subscriber verified with the project's consumer, and failures (all trials of the row). */
function verifiedCell(s) {
  if (!s.verified) return '-'
  return `${num(s.verified.sum)}/${num(s.signatureFailures?.sum ?? null)}`
}

/** Serial loads: the PUBACK round trip at the device, p50/p99 (medians over the rounds). */
function pubackCell(s) {
  if (!s.ackRttP50Ms) return '-'
  return `${num(s.ackRttP50Ms.median)}/${num(s.ackRttP99Ms?.median ?? null)}`
}

function harnessCell(s) {
  const pub = s.publisherMaxCore?.max
  const sub = s.subscriberCore?.max
  if (pub === undefined && sub === undefined) return '-'
  return `pub ${num(pub ?? null)} sub ${num(sub ?? null)}`
}

function render(header, lines) {
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)))
  const fmt = (cells) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`
  return [fmt(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(fmt)].join('\n')
}

/** Markdown tables, one per group, each load with its Mosquitto and gateway rows together. */
export function formatTable(rows) {
  const groups = [...new Set(rows.map((r) => r.group))]
  return groups
    .map((group) => {
      const lines = rows
        .filter((r) => r.group === group)
        .map((r) => COLUMNS.map(([, read]) => String(read(r))))
      return `### ${group}\n\n${render(
        COLUMNS.map(([h]) => h),
        lines,
      )}`
    })
    .join('\n\n')
}

export function formatWireTable(wire) {
  const header = [
    'system',
    'LAN',
    'connect bytes (up/down)',
    'QoS 1 msg bytes (up/down)',
    'QoS 0 msg bytes (up)',
    'payload B',
  ]
  const lines = wire.map((w) => [
    w.system,
    w.lan,
    w.error ? `error: ${w.error}` : `${w.connect.total} (${w.connect.up}/${w.connect.down})`,
    w.error ? '-' : `${w.qos1PerMessage.total} (${w.qos1PerMessage.up}/${w.qos1PerMessage.down})`,
    w.error ? '-' : String(w.qos0PerMessage.up),
    w.error ? '-' : String(w.payloadBytes),
  ])
  return render(header, lines)
}

/**
 * At rest, one row per system: start-up over the trials (spawn to the first CONNACK and to the
 * first message at the subscriber, every TLS-PSK trial without idle devices pooled) and the
 * resident memory 20 s after spawn with no load (bench/lib/at-rest.mjs, one reading per round).
 */
export function formatAtRestTable(atRest, rows) {
  const header = [
    'system',
    'LAN',
    'start ms',
    'first delivery ms',
    'trials',
    'RSS 20 s after start MiB',
    'rounds',
  ]
  const pooled = (setup, read) =>
    summarize(
      rows
        .filter((r) => r.group === PSK_GROUP && r.setup === setup && !(r.loadSpec?.idle > 0))
        .flatMap((r) => r.trials.filter((t) => !t.error).map(read)),
    )
  const lines = atRest.map((a) => {
    const start = pooled(a.setup, (t) => t.startup?.firstConnectionMs ?? null)
    return [
      a.system,
      'TLS-PSK',
      cell(start),
      cell(pooled(a.setup, (t) => t.startup?.firstDeliveryMs ?? null)),
      String(start?.n ?? 0),
      a.n > 0 ? cell(a.rssMiB) : `failed: ${a.errors[0] ?? '-'}`,
      `${a.n}/${a.of}`,
    ]
  })
  return render(header, lines)
}

/**
 * Restart loads, one row per setup and round: the stop, the PUBACK rate of the second before it,
 * the rate in each 0.5 s from the new spawn, and when full speed (90 % of before) came back.
 */
export function formatRestartTable(rows) {
  const trials = rows
    .filter((r) => r.loadSpec?.mode === 'restart')
    .flatMap((r) => r.trials.filter((t) => t.restart).map((t) => ({ r, t })))
  if (trials.length === 0) return null
  const buckets = Math.max(...trials.map(({ t }) => t.restart.afterPerSec.length))
  const header = [
    'load',
    'system',
    'round',
    'stop ms',
    'PUBACK/s before',
    ...Array.from({ length: buckets }, (_, i) => `${i * 0.5}-${(i + 1) * 0.5} s`),
    'full speed after ms',
  ]
  const lines = trials.map(({ r, t }) => [
    r.load,
    r.system,
    String(t.round),
    num(t.restart.stopMs),
    num(t.restart.beforePerSec),
    ...Array.from({ length: buckets }, (_, i) => num(t.restart.afterPerSec[i] ?? null)),
    t.restart.fullSpeedAfterMs === null ? `not within ${buckets * 0.5} s` : num(t.restart.fullSpeedAfterMs),
  ])
  return render(header, lines)
}
