import { describe, expect, it } from 'vitest'
import { Backoff } from '../../bridge/backoff.js'

const draws = (backoff: Backoff, n: number) => Array.from({ length: n }, () => backoff.next())

describe('Backoff', () => {
  it('gives the initial delay every time when the random draw is 0', () => {
    expect(draws(new Backoff(500, 30_000, () => 0), 10)).toEqual(Array(10).fill(500))
  })

  it('triples the delay up to the cap when the random draw is 1, then stays at the cap', () => {
    expect(draws(new Backoff(100, 10_000, () => 1), 8)).toEqual([
      300, 900, 2700, 8100, 10_000, 10_000, 10_000, 10_000,
    ])
  })

  it('draws between the initial delay and three times the previous one', () => {
    const backoff = new Backoff(100, 10_000, () => 0.5)
    // upper = max(100, 3 * previous); delay = 100 + 0.5 * (upper - 100)
    expect(draws(backoff, 5)).toEqual([200, 350, 575, 912.5, 1418.75].map(Math.round))
  })

  it('starts again from the initial delay after reset()', () => {
    const backoff = new Backoff(100, 10_000, () => 1)
    expect(draws(backoff, 6)).toEqual([300, 900, 2700, 8100, 10_000, 10_000])
    backoff.reset()
    expect(draws(backoff, 3)).toEqual([300, 900, 2700])
  })

  it('grows back from a small draw instead of staying at the cap', () => {
    let value = 1
    const backoff = new Backoff(100, 10_000, () => value)
    expect(draws(backoff, 6).at(-1)).toBe(10_000)
    value = 0
    expect(backoff.next()).toBe(100)
    value = 1
    expect(draws(backoff, 2)).toEqual([300, 900])
  })

  it('keeps every delay within [initial, max] over 1000 draws of Math.random', () => {
    const backoff = new Backoff(500, 30_000)
    const delays = draws(backoff, 1000)
    for (const delay of delays) {
      expect(Number.isInteger(delay)).toBe(true)
      expect(delay).toBeGreaterThanOrEqual(500)
      expect(delay).toBeLessThanOrEqual(30_000)
    }
    // Jitter: not all the same.
    expect(new Set(delays).size).toBeGreaterThan(1)
  })
})
