import { describe, expect, it } from 'vitest'
import { TokenBucket } from '../../policies/token-bucket.js'

function clock() {
  let now = 1_000
  return { now: () => now, advance: (ms: number) => (now += ms) }
}

describe('TokenBucket', () => {
  it('starts full at burst and refuses when empty', () => {
    const c = clock()
    const bucket = new TokenBucket(2, 3, c.now)
    expect([bucket.take(), bucket.take(), bucket.take(), bucket.take()]).toEqual([true, true, true, false])
  })

  it('burst defaults to one second of tokens', () => {
    const c = clock()
    const bucket = new TokenBucket(5, undefined, c.now)
    expect(bucket.burst).toBe(5)
    expect(bucket.take(5)).toBe(true)
    expect(bucket.take(1)).toBe(false)
  })

  it('refills at perSecond, in fractions', () => {
    const c = clock()
    const bucket = new TokenBucket(10, 10, c.now)
    expect(bucket.take(10)).toBe(true)
    c.advance(99)
    expect(bucket.take()).toBe(false)
    c.advance(1)
    expect(bucket.take()).toBe(true)
    expect(bucket.take()).toBe(false)
    c.advance(250)
    expect(bucket.available()).toBeCloseTo(2.5, 9)
  })

  it('never refills above burst', () => {
    const c = clock()
    const bucket = new TokenBucket(100, 4, c.now)
    c.advance(60_000)
    expect(bucket.available()).toBe(4)
    expect(bucket.take(4)).toBe(true)
    expect(bucket.take()).toBe(false)
  })

  it('a request larger than burst never passes and takes nothing', () => {
    const c = clock()
    const bucket = new TokenBucket(100, 50, c.now)
    expect(bucket.take(51)).toBe(false)
    expect(bucket.take(50)).toBe(true)
  })

  it('ignores a clock that goes backwards', () => {
    const c = clock()
    const bucket = new TokenBucket(1, 1, c.now)
    expect(bucket.take()).toBe(true)
    c.advance(-5_000)
    expect(bucket.take()).toBe(false)
    c.advance(5_000)
    expect(bucket.take()).toBe(false)
    c.advance(1_000)
    expect(bucket.take()).toBe(true)
  })

  it('refuses a non-positive rate', () => {
    expect(() => new TokenBucket(0)).toThrow('Expected a positive rate and burst, got 0/s and burst 0')
    expect(() => new TokenBucket(1, -1)).toThrow(RangeError)
  })
})
