import { describe, expect, it } from 'vitest'
import { restartFigures } from '../../bench/lib/restart.mjs'

const GO = 1_000_000_000
const MS = 1000

/**
 * PUBACKs per 10 ms of one publisher that went at GO: 10 per bucket for 2 s, nothing for the
 * 0.5 s of the restart, then `after(i)` in the i-th 10 ms bucket from the new spawn.
 */
function timeline(after: (i: number) => number, buckets = 700): number[] {
  return Array.from({ length: buckets }, (_, i) => (i < 200 ? 10 : i < 250 ? 0 : after(i - 250)))
}

const RESTART = { stopAtMicros: GO + 2_000 * MS, spawnAtMicros: GO + 2_500 * MS, stopMs: 500 }

describe('restartFigures: PUBACKs of every publisher on the monotonic time line', () => {
  it('rate before the stop, 0.5 s buckets from the spawn, and when 90 % of the rate came back', () => {
    // Half speed in the first 0.5 s, 90 % in the second, full after.
    const ramp = (i: number) => (i < 50 ? 5 : i < 100 ? 9 : 10)
    const a = timeline(ramp)
    // A second publisher that went 20 ms later, on the same absolute time line.
    const b = a.slice(2)
    const figures = restartFigures(
      [
        { acks: { goMicros: GO, bucketMs: 10, buckets: a }, reconnectAttempts: 3 },
        { acks: { goMicros: GO + 20 * MS, bucketMs: 10, buckets: b }, reconnectAttempts: 4 },
      ],
      RESTART,
      4_000,
    )
    expect(figures).toEqual({
      stopMs: 500,
      bucketMs: 500,
      beforePerSec: 2000,
      // The timelines end 7 s (a) and 6.98 s (b) after their go: 4.5 s after the spawn.
      afterPerSec: [1000, 1800, 2000, 2000, 2000, 2000, 2000, 2000],
      fullSpeedAfterMs: 1000,
      reconnectAttempts: 7,
    })
  })

  it('full speed in the first bucket is 500 ms', () => {
    const figures = restartFigures(
      [{ acks: { goMicros: GO, bucketMs: 10, buckets: timeline(() => 9) } }],
      RESTART,
      1_000,
    )
    expect([figures.afterPerSec, figures.fullSpeedAfterMs]).toEqual([[900, 900], 500])
  })

  it('never back at 90 % within the time measured: null', () => {
    const figures = restartFigures(
      [{ acks: { goMicros: GO, bucketMs: 10, buckets: timeline(() => 8) } }],
      RESTART,
      2_000,
    )
    expect([figures.afterPerSec, figures.fullSpeedAfterMs]).toEqual([[800, 800, 800, 800], null])
  })

  it('nothing acknowledged before the stop: no full speed to come back to, null', () => {
    const buckets = timeline(() => 10).map((n, i) => (i < 250 ? 0 : n))
    const figures = restartFigures([{ acks: { goMicros: GO, bucketMs: 10, buckets } }], RESTART, 1_000)
    expect([figures.beforePerSec, figures.fullSpeedAfterMs]).toEqual([0, null])
  })
})
