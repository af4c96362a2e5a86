/**
 * A restart under load (`restart-*`): the publishers run the closed loop, the
 * edge is stopped (SIGTERM, as a service manager does) and started again on the
 * same ports, config and state, the publishers reconnect as soon as it accepts,
 * and their PUBACKs are counted in 0.5 s buckets from the new spawn. Full speed
 * is the PUBACK rate of the last second before the stop; the figure is when
 * the first bucket at 90 % of it ends.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { nowMicros } from './payload.mjs'
import { statusKb } from './proc-stats.mjs'

export const RESTART_BUCKET_MS = 500
/** A bucket at this share of the rate before the stop is at full speed. */
export const FULL_SPEED_SHARE = 0.9
const BEFORE_WINDOW_MS = 1_000

/**
 * Runs the load through one restart of `edge`: `go`, `load.beforeMs` of
 * sending, the restart, `load.afterMs` from the new spawn, `stop`. Resolves
 * with the publishers' reports and the times of the restart.
 */
export async function driveRestart({ edge, publishers, load, reportTimeoutMs }) {
  const reportsPending = Promise.all(
    publishers.map((p) => p.request({ type: 'go' }, 'report', reportTimeoutMs)),
  )
  // Awaited below; a publisher failing meanwhile must not be an unhandled rejection.
  reportsPending.catch(() => undefined)
  await sleep(load.beforeMs)
  const peakBeforeKb = statusKb(edge.pid, 'VmHWM')
  const stopAtMicros = nowMicros()
  await edge.restart()
  const spawnAtMicros = edge.spawnedAtMicros
  await sleep(load.afterMs)
  for (const p of publishers) p.send({ type: 'stop' })
  const reports = await reportsPending
  return {
    reports,
    restart: {
      stopAtMicros,
      spawnAtMicros,
      stopMs: Math.round((spawnAtMicros - stopAtMicros) / 1000),
      peakBeforeKb,
    },
  }
}

/**
 * PUBACKs of every publisher on one time line (the monotonic clock every
 * process reads): the rate in the second before the stop, the rate in each
 * 0.5 s after the new spawn up to `afterMs`, and when full speed came back
 * (the end of the first bucket at FULL_SPEED_SHARE of the rate before, in ms
 * from the spawn; null if not within `afterMs`).
 */
export function restartFigures(reports, restart, afterMs) {
  const count = (fromMicros, toMicros) => {
    let n = 0
    for (const r of reports) {
      const { goMicros, bucketMs, buckets } = r.acks
      for (let i = 0; i < buckets.length; i++) {
        // A fine bucket counts where it starts.
        const at = goMicros + i * bucketMs * 1000
        if (at >= fromMicros && at < toMicros) n += buckets[i]
      }
    }
    return n
  }
  const beforePerSec =
    count(restart.stopAtMicros - BEFORE_WINDOW_MS * 1000, restart.stopAtMicros) / (BEFORE_WINDOW_MS / 1000)
  const afterPerSec = []
  for (let start = 0; start < afterMs; start += RESTART_BUCKET_MS) {
    const from = restart.spawnAtMicros + start * 1000
    afterPerSec.push(count(from, from + RESTART_BUCKET_MS * 1000) / (RESTART_BUCKET_MS / 1000))
  }
  const first = afterPerSec.findIndex((rate) => beforePerSec > 0 && rate >= FULL_SPEED_SHARE * beforePerSec)
  return {
    stopMs: restart.stopMs,
    bucketMs: RESTART_BUCKET_MS,
    beforePerSec,
    afterPerSec,
    fullSpeedAfterMs: first < 0 ? null : (first + 1) * RESTART_BUCKET_MS,
    reconnectAttempts: reports.reduce((a, r) => a + (r.reconnectAttempts ?? 0), 0),
  }
}
