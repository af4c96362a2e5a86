import { describe, expect, it } from 'vitest'
import { RefusalFloor } from '../../../gateway/auth/refusal-floor.js'

describe('RefusalFloor', () => {
  const clock = () => {
    let t = 0
    return { now: () => t, advance: (ms: number) => (t += ms) }
  }

  it('stays at the configured floor while checks are faster than it', () => {
    const c = clock()
    const floor = new RefusalFloor({ floorMs: 500, now: c.now })
    for (const ms of [5, 120, 390]) floor.record(ms)
    expect(floor.current()).toBe(500)
  })

  it('rises above the slowest recent check, in 50 ms steps, and sinks back after the window', () => {
    const c = clock()
    const floor = new RefusalFloor({ floorMs: 500, windowMs: 60_000, now: c.now })
    floor.record(530)
    expect(floor.current()).toBe(700) // 530 × 1.25 = 662.5, rounded up to the next 50 ms
    c.advance(30_000)
    floor.record(100)
    expect(floor.current()).toBe(700)
    c.advance(40_000)
    expect(floor.current()).toBe(500)
  })

  it('never rises above ten times the configured floor', () => {
    const floor = new RefusalFloor({ floorMs: 500, now: () => 0 })
    floor.record(60_000)
    expect(floor.current()).toBe(5_000)
  })

  it('stays off when the configured floor is 0', () => {
    const floor = new RefusalFloor({ floorMs: 0, now: () => 0 })
    floor.record(900)
    expect(floor.current()).toBe(0)
  })
})
