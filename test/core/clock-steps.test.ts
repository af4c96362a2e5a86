import { Writable } from 'node:stream'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { LogLimiter } from '../../core/log-limiter.js'
import { createLogger } from '../../core/logger.js'
import { Metrics } from '../../core/metrics.js'
import { SecurityEvents } from '../../core/security-events.js'
import { type Attempt, Lockout } from '../../gateway/auth/lockout.js'
import { FloodTracker } from '../../gateway/flood-tracker.js'

/**
 * A Raspberry Pi has no real-time clock: NTP steps the wall clock at boot (forward, often by
 * months) and now and then back. What measures a duration must not see those steps: each class
 * here is built with its default clock, and `step` moves the wall clock alone (vitest's fake
 * timers leave `performance.now()` where it was), `advance` both.
 */
const HOUR = 3_600_000
const step = (ms: number) => vi.setSystemTime(Date.now() + ms)
const advance = (ms: number) => vi.advanceTimersByTime(ms)

afterEach(() => {
  vi.useRealTimers()
})

describe('durations across a wall-clock step', () => {
  const attempt: Attempt = { kind: 'password', identity: 'valve', address: '10.0.0.9' }
  const settings = { maxFailures: 3, windowSeconds: 60, lockSeconds: 300, maxEntries: 100 }

  it('a lockout lasts lockSeconds: a step forward does not lift it, a step back does not stretch it', () => {
    vi.useFakeTimers({ now: Date.UTC(2026, 11, 8) })
    const lockout = new Lockout(settings)
    for (let i = 0; i < 3; i++) lockout.fail(attempt)
    step(90 * 24 * HOUR)
    advance(60_000)
    expect(lockout.check(attempt)).toMatchObject({ locked: true, retryAfterMs: 240_000 })
    step(-2 * HOUR - 90 * 24 * HOUR)
    advance(240_000)
    expect(lockout.check(attempt)).toMatchObject({ locked: false })
  })

  it('a security event line limit opens again after its window, whatever the wall clock did', async () => {
    vi.useFakeTimers({ now: Date.UTC(2026, 11, 8) })
    const lines: Array<Record<string, unknown>> = []
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line))
        done()
      },
    })
    const events = new SecurityEvents(createLogger({ level: 'info', destination }), new Metrics(), {
      burst: 2,
      windowMs: 10_000,
    })
    const refuse = () => events.report('auth_bad_password', { username: 'tiny' }, 'refused')
    refuse()
    refuse()
    refuse()
    step(-2 * HOUR)
    advance(10_000)
    refuse()
    await vi.runOnlyPendingTimersAsync()
    const refusals = lines.filter((l) => l.event === 'auth_bad_password' && l.msg === 'refused')
    expect(refusals).toHaveLength(3)
    // The recent-events list keeps wall-clock times, for people to read.
    expect(events.recent().at(-1)?.at).toBe(Date.now())
  })

  it('a log limiter opens again after its window, whatever the wall clock did', () => {
    vi.useFakeTimers({ now: Date.UTC(2026, 11, 8) })
    const limiter = new LogLimiter(1, 10_000)
    expect(limiter.take('k')).toEqual({ suppressed: 0 })
    expect(limiter.take('k')).toBeUndefined()
    step(-2 * HOUR)
    advance(10_000)
    expect(limiter.take('k')).toEqual({ suppressed: 1 })
  })

  it('a flood window is 10 s of monotonic time: over-limit messages a minute apart across a step are not one flood', () => {
    vi.useFakeTimers({ now: Date.UTC(2026, 11, 8) })
    const flood = new FloodTracker()
    const client = {}
    flood.record(client)
    step(-2 * HOUR)
    let count = 0
    for (let i = 0; i < 101; i++) {
      advance(60_000)
      count = flood.record(client)
    }
    expect(count).toBe(1)
  })
})
