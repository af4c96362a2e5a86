/**
 * The goals of issue 13 per attack, and the printed table:
 *  - latency: the legitimate devices' p99 during the attack within 2x of the quiet p99;
 *  - memory: gateway RSS below 200 MiB throughout the attack and its settle period, and
 *    after the settle period within 20 MiB of what it was just before the attack (so a
 *    row answers for its own attack; the run's end against its idle figure is a goal too);
 *  - delivery: every legitimate message acknowledged during the attack reached the cloud;
 *  - access: the TLS-PSK device connects during the attack (and, after the lockout
 *    attack, the password devices reconnect).
 */

export const GOALS = { maxP99Ratio: 2, maxRssMiB: 200, maxRssAboveIdleMiB: 20 }

const mib = (kb) => (kb === null || kb === undefined ? null : Math.round((kb / 1024) * 10) / 10)

/** One row's goals: PASS/FAIL each, null when the figure is missing (counted as a failure). */
export function judge(row) {
  const ratio = row.quietP99Ms && row.attackP99Ms !== null ? row.attackP99Ms / row.quietP99Ms : null
  row.p99Ratio = ratio === null ? null : Math.round(ratio * 100) / 100
  row.goals = {
    latency: ratio !== null && ratio <= GOALS.maxP99Ratio,
    rssMax: row.rssMaxMiB !== null && row.rssMaxMiB < GOALS.maxRssMiB,
    rssAfter:
      row.rssAfterMiB !== null &&
      row.rssBeforeMiB !== null &&
      row.rssAfterMiB <= row.rssBeforeMiB + GOALS.maxRssAboveIdleMiB,
    delivery: row.lostDuring === 0,
    access: row.access.ok,
  }
  return row
}

export { mib }

const cell = (x, digits = 1) => {
  if (x === null || x === undefined) return '-'
  if (typeof x === 'string') return x
  return Number.isInteger(x) ? String(x) : x.toFixed(digits)
}
const pf = (ok) => (ok ? 'PASS' : 'FAIL')

export function formatTable(rows) {
  const header = [
    'attack (finding)',
    'quiet p99 ms',
    'attack p99 ms',
    'ratio',
    '<=2x',
    'RSS before MiB',
    'RSS max',
    'RSS after',
    '<200',
    'after<=before+20',
    'legit acked',
    'lost',
    'none lost',
    'device connects',
  ]
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`]
  for (const r of rows) {
    if (r.error && !r.goals) {
      lines.push(`| ${r.attack} (${r.finding}) | not run: ${r.error} |${' |'.repeat(header.length - 2)}`)
      continue
    }
    lines.push(
      `| ${[
        `${r.attack} (${r.finding})`,
        cell(r.quietP99Ms),
        r.attackP99Unbounded ? 'inf' : cell(r.attackP99Ms),
        r.attackP99Unbounded ? 'inf' : cell(r.p99Ratio, 2),
        pf(r.goals.latency),
        cell(r.rssBeforeMiB),
        cell(r.rssMaxMiB),
        cell(r.rssAfterMiB),
        pf(r.goals.rssMax),
        pf(r.goals.rssAfter),
        cell(r.ackedDuring),
        cell(r.lostDuring),
        pf(r.goals.delivery),
        `${pf(r.goals.access)}${r.access.note ? ` (${r.access.note})` : ''}`,
      ].join(' | ')} |`,
    )
  }
  return lines.join('\n')
}

/** What each attack did and what the gateway answered, one line each. */
export function formatOutcomes(rows) {
  return rows
    .map((r) => {
      const what = r.outcome ?? r.error ?? ''
      return `- ${r.attack}: ${what}${r.logLines !== undefined ? `; gateway log lines ${r.logLines}` : ''}${
        r.drain && !r.drain.drained ? `; uplink backlog not drained (queue depth ${r.drain.depth})` : ''
      }`
    })
    .join('\n')
}

/** A short sentence of what an attack did, from the attacker's result. */
export function describeOutcome(name, result) {
  if (!result) return null
  switch (name) {
    case 'idle-tls':
      return `${result.opened}/${result.target} sockets opened${
        result.target < result.wanted
          ? ` (${result.wanted} wanted; the open-file limit allows ${result.target})`
          : ''
      } in ${result.openMs} ms (${result.failed} failed${
        Object.keys(result.errors).length ? `: ${JSON.stringify(result.errors)}` : ''
      }); the gateway closed ${result.closedByGateway}${
        result.firstClosedAfterMs !== null ? ` (first after ${result.firstClosedAfterMs} ms)` : ''
      }`
    case 'big-connect':
      return `${Math.round(result.bytesWritten / 1024 / 1024)} MiB written on ${result.connections} connections; the gateway closed ${result.closedByGateway} of them`
    case 'flood':
      return `${result.sent} published, ${result.acked} acknowledged, ${result.connects} connection(s), closed by the gateway ${result.closedByGateway} time(s)${
        Object.keys(result.refusals).length ? `, refused ${JSON.stringify(result.refusals)}` : ''
      }`
    case 'big-publish':
      return `one ${Math.round(result.bytes / 1024 / 1024)} MiB PUBLISH: ${result.outcome ?? 'not sent'}${
        result.ms !== undefined ? ` after ${result.ms} ms` : ''
      }`
    case 'subscriptions':
      return `${result.requested} filters requested in ${result.packets} SUBSCRIBEs: ${result.granted} granted, ${result.refused} refused${
        result.closedByGateway ? ', connection closed by the gateway' : ''
      }`
    case 'malformed':
      return `${result.run} of ${result.cases} cases in the time (seed ${result.seed}; ${result.preAuth} before CONNECT, ${result.postAuth} after), the gateway closed ${result.closedByGateway}, refused ${result.sessionRefused} valid CONNECTs`
    case 'poison':
      return `QoS 1 to a ${result.topicBytes}-byte topic (${result.cloudTopicBytes} bytes on the cloud): ${result.outcome ?? 'not sent'}`
    case 'lockout':
      return `${result.rounds} round(s): credential-less ${JSON.stringify(result.anonymous.outcomes)}, wrong password ${JSON.stringify(result.wrongPassword.outcomes)}`
    default:
      return JSON.stringify(result)
  }
}

/**
 * Every goal that failed, as `attack:goal`; plus `<attack>:not-run`, `total:lost`
 * (a legitimate message acknowledged and never delivered, in any phase) and
 * `total:rss` (RSS at the end of the run more than 20 MiB above the idle figure).
 */
export function failedGoals(report) {
  const failed = []
  for (const name of report.attacks) {
    const row = report.rows.find((r) => r.attack === name)
    if (!row?.goals) failed.push(`${name}:not-run`)
    else for (const [goal, ok] of Object.entries(row.goals)) if (!ok) failed.push(`${name}:${goal}`)
  }
  if (report.delivery.totals.lost > 0) failed.push('total:lost')
  if (report.rssEndMiB === null || report.rssEndMiB > report.rssIdleMiB + GOALS.maxRssAboveIdleMiB)
    failed.push('total:rss')
  return failed
}

const fixed = (x) => (x === null || x === undefined ? '-' : x.toFixed(1))

export function formatReport(report) {
  const m = report.machine
  const d = report.delivery
  const git = report.git
    ? `, commit ${report.git.commit}${report.git.changedFiles ? ` + ${report.git.changedFiles} changed files` : ''}`
    : ''
  const failed = report.failedGoals
  return [
    `edge-gateway under attack (${report.mode}), ${report.date} - ${m.cores} cores, ${m.model}, Node ${m.node}${git}`,
    `legitimate load: ${d.devices.map((x) => x.id).join(', ')} at ${report.ratePerSecond} msg/s QoS 1 each, one in flight; ` +
      `quiet p50 ${fixed(report.quiet.p50Ms)} ms, p99 ${fixed(report.quiet.p99Ms)} ms; idle RSS ${report.rssIdleMiB} MiB; ` +
      `gateway open-file limit ${report.gatewayFileLimits?.soft ?? '?'}; ` +
      `took ${report.durationSeconds} s; load average before ${report.loadAverage.before.join(' ')}, after ${report.loadAverage.after.join(' ')}`,
    '',
    formatTable(report.rows),
    '',
    formatOutcomes(report.rows),
    '',
    `total: legit acknowledged ${d.totals.acked}, received ${d.totals.received}, lost ${d.totals.lost} ` +
      `(${d.devices.map((x) => `${x.id} ${x.acked}/${x.received}/${x.lost}`).join(', ')}); ` +
      `flooder acknowledged ${d.flooder.acked}, received ${d.flooder.received}, lost ${d.flooder.lost}; ` +
      `gateway queue at the end ${d.queueDepthAtEnd ?? '?'} (cloud link ${d.link ?? '?'}); ` +
      `RSS idle ${report.rssIdleMiB} MiB, at the end ${report.rssEndMiB} MiB; ` +
      `${report.gatewayExited ? `the gateway EXITED (${JSON.stringify(report.gatewayExited)}); ` : ''}` +
      `${failed.length === 0 ? 'every goal PASS' : `${failed.length} goal(s) FAIL`}`,
    '',
  ].join('\n')
}
