/**
 * The phases of a run, while the legitimate load goes on throughout:
 * warm-up, idle (the RSS baseline), quiet (the latency baseline), then per
 * attack: the attack itself (bounded; a TLS-PSK device's connect probe two
 * thirds in), a settle period (nothing forced) after which RSS is read again,
 * and a bounded wait for the gateway's queue to drain so the next attack
 * starts without the last one's backlog. The legitimate devices tag every
 * message with the phase it was due in; the parent later matches those tags
 * against what reached the cloud.
 */
import { hasExited } from '../processes.mjs'
import {
  linkStatus,
  logLineCounter,
  maxOf,
  medianOf,
  queueDepth,
  readStatus,
  waitDrained,
} from './monitor.mjs'
import { judge, mib } from './report.mjs'
import { sleep } from './wire.mjs'

/** RSS "before" an attack and "after" its settle period: the median over this long (ms). */
const AFTER_WINDOW_MS = 2_000

function accessOf(probe, reconnect) {
  const problems = []
  if (!probe?.ok) problems.push(`psk-1: ${probe?.error ?? 'no probe'}`)
  for (const r of reconnect ?? []) if (!r.ok) problems.push(`${r.id}: ${r.error}`)
  if (problems.length) return { ok: false, note: problems.join('; ') }
  const parts = [`psk ${Math.round(probe.ms)} ms`]
  if (reconnect) parts.push(`reconnect ${reconnect.map((r) => `${Math.round(r.ms)}`).join('/')} ms`)
  return { ok: true, note: parts.join(', ') }
}

export async function runAttacks(ctx) {
  const { gateway, legit, attacker, subscriber, rss, logFile, statusFile, times, attacks, quick, log } = ctx
  const phases = []
  const begin = async (name) => {
    const index = phases.length
    phases.push({ name, at: Math.round(performance.now()) })
    await legit.request({ type: 'phase', index }, 'phased')
    return index
  }
  const stats = (index) => legit.request({ type: 'stats', index }, 'stats')
  const cloudLegit = async () => {
    const p = await subscriber.request({ type: 'progress' }, 'progress')
    return p.perDevice[0] + p.perDevice[1]
  }
  const logLines = logLineCounter(logFile)

  log(`warm-up ${times.warmupMs} ms, idle ${times.idleMs} ms, quiet ${times.quietMs} ms`)
  await begin('warm-up')
  await sleep(times.warmupMs)
  const idleIndex = await begin('idle')
  const idleFrom = performance.now()
  await sleep(times.idleMs)
  const rssIdleMiB = mib(medianOf(rss.between(idleFrom, performance.now())))
  const quietIndex = await begin('quiet')
  await sleep(times.quietMs)
  await begin('after-quiet')
  const quiet = await stats(quietIndex)
  phases[idleIndex].stats = await stats(idleIndex)
  phases[quietIndex].stats = quiet
  log(
    `idle RSS ${rssIdleMiB} MiB; quiet p50 ${quiet.p50Ms?.toFixed(1)} ms, p99 ${quiet.p99Ms?.toFixed(1)} ms`,
  )

  const rows = []
  for (const spec of attacks) {
    const base = { attack: spec.name, finding: spec.finding, title: spec.title }
    if (hasExited(gateway)) {
      rows.push({
        ...base,
        error: `the gateway exited (code ${gateway.exitCode}, signal ${gateway.signalCode})`,
      })
      continue
    }
    log(`attack ${spec.name} (${times.attackMs} ms): ${spec.title}`)
    logLines()
    const cloudBefore = await cloudLegit()
    const index = await begin(`attack:${spec.name}`)
    const t0 = performance.now()
    const rssBeforeMiB = mib(medianOf(rss.between(t0 - AFTER_WINDOW_MS, t0)))
    const running = attacker
      .request(
        { type: 'run', attack: spec.name, durationMs: times.attackMs, quick },
        'done',
        times.attackMs + 90_000,
      )
      .catch((err) => ({ error: err.message }))
    const probing =
      spec.name === 'lockout'
        ? null
        : sleep((times.attackMs * 2) / 3).then(() => legit.request({ type: 'probe' }, 'probed', 20_000))
    const done = await running
    const probe = probing ? await probing : null
    const t1 = performance.now()
    await begin(`settle:${spec.name}`)
    const s = await stats(index)
    const cloudDuring = (await cloudLegit()) - cloudBefore
    phases[index].stats = s
    let access = accessOf(probe, null)
    let reconnect = null
    if (spec.name === 'lockout') {
      // While the attacker's failures are fresh, after the attack's own figures: the real devices,
      // with their real credentials, disconnect and connect again; the PSK device connects.
      reconnect = (await legit.request({ type: 'reconnect' }, 'reconnected', 30_000)).devices
      access = accessOf(await legit.request({ type: 'probe' }, 'probed', 20_000), reconnect)
    }
    await sleep(Math.max(0, times.settleMs - (performance.now() - t1)))
    const t2 = performance.now()
    const status = readStatus(statusFile)
    const row = {
      ...base,
      phase: index,
      ms: Math.round(t1 - t0),
      quietP99Ms: quiet.p99Ms,
      attackP50Ms: s.p50Ms,
      attackP99Ms: s.p99Ms,
      attackP99Unbounded: s.p99Unbounded,
      legit: s,
      rssIdleMiB,
      rssBeforeMiB,
      // "Throughout": the attack and the settle period after it.
      rssMaxMiB: mib(maxOf(rss.between(t0, t2))),
      rssMaxDuringAttackMiB: mib(maxOf(rss.between(t0, t1))),
      rssAfterMiB: mib(medianOf(rss.between(t2 - AFTER_WINDOW_MS, t2))),
      probe,
      reconnect,
      access,
      result: done.result ?? null,
      error: done.error ?? null,
      logLines: logLines(),
      cloudLegitDuring: cloudDuring,
      queueDepthAfterSettle: queueDepth(status),
      linkAfterSettle: linkStatus(status),
      gatewayAlive: !hasExited(gateway),
    }
    await begin(`drain:${spec.name}`)
    row.drain = await waitDrained(statusFile, { maxMs: times.drainMaxMs, stallMs: times.stallMs })
    log(
      `  p99 ${s.p99Unbounded ? 'inf' : s.p99Ms?.toFixed(1)} ms, RSS max ${row.rssMaxMiB} MiB, after ${row.rssAfterMiB} MiB, ` +
        `${row.access.ok ? 'device connects' : `ACCESS: ${row.access.note}`}${row.error ? `, error: ${row.error}` : ''}; ` +
        `queue ${row.drain.drained ? 'drained' : `not drained (${row.drain.depth})`} in ${row.drain.ms} ms`,
    )
    rows.push(row)
  }
  await begin('final')
  return {
    phases,
    rows,
    quiet,
    rssIdleMiB,
    /** Judges each row once its delivery figures are known. */
    finish(all) {
      for (const row of all) if (row.phase !== undefined) judge(row)
    },
  }
}
