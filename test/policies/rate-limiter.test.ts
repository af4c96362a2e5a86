import { describe, expect, it } from 'vitest'
import { compilePolicy } from '../../policies/engine.js'
import { RateLimiter } from '../../policies/rate-limiter.js'
import { policy } from './fixtures.js'

const engine = compilePolicy(
  policy(
    { who: 'everyone', topic: 'm', action: 'publish', rate: { messages: { perSecond: 2 } } },
    { who: 'everyone', topic: 'b', action: 'publish', rate: { bytes: { perSecond: 100, burst: 150 } } },
    { who: 'everyone', topic: 'free', action: 'publish' },
    {
      who: 'everyone',
      topic: 'mb',
      action: 'publish',
      rate: { messages: { perSecond: 1 }, bytes: { perSecond: 10 } },
    },
  ),
)
const messagesRule = engine.rules[0]!
const bytesRule = engine.rules[1]!
const freeRule = engine.rules[2]!
const bothRule = engine.rules[3]!

function clock() {
  let now = 0
  return { now: () => now, advance: (ms: number) => (now += ms) }
}

describe('RateLimiter', () => {
  it('takes memory as pairs come, not for its whole bound up front (100,000 by default)', () => {
    const before = process.memoryUsage().arrayBuffers
    const limiters = Array.from({ length: 10 }, () => new RateLimiter())
    // Ten limiters sized up front would hold 10 x 1.2 MB of typed arrays (lru-cache's `max`).
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(1_000_000)
    expect(limiters).toHaveLength(10)
  })

  it('limits messages per device and rule, and refills', () => {
    const c = clock()
    const limiter = new RateLimiter({ now: c.now })
    expect([0, 0, 0].map(() => limiter.check('dev-1', messagesRule, 1))).toEqual(['ok', 'ok', 'messages'])
    expect(limiter.check('dev-2', messagesRule, 1)).toBe('ok')
    c.advance(500)
    expect(limiter.check('dev-1', messagesRule, 1)).toBe('ok')
    expect(limiter.check('dev-1', messagesRule, 1)).toBe('messages')
  })

  it('limits payload bytes with the burst', () => {
    const c = clock()
    const limiter = new RateLimiter({ now: c.now })
    expect(limiter.check('dev-1', bytesRule, 150)).toBe('ok')
    expect(limiter.check('dev-1', bytesRule, 1)).toBe('bytes')
    c.advance(100)
    expect(limiter.check('dev-1', bytesRule, 10)).toBe('ok')
    expect(limiter.check('dev-1', bytesRule, 1)).toBe('bytes')
  })

  it('checks messages before bytes', () => {
    const limiter = new RateLimiter({ now: clock().now })
    expect(limiter.check('dev-1', bothRule, 11)).toBe('bytes')
    expect(limiter.check('dev-1', bothRule, 1)).toBe('messages')
  })

  it('a rule without rate is always ok and holds no memory', () => {
    const limiter = new RateLimiter()
    for (let i = 0; i < 10; i++) expect(limiter.check('dev-1', freeRule, 1e6)).toBe('ok')
    expect(limiter.size).toBe(0)
  })

  it('keys buckets by device and rule index', () => {
    const limiter = new RateLimiter({ now: clock().now })
    limiter.check('dev-1', messagesRule, 1)
    limiter.check('dev-1', bytesRule, 1)
    limiter.check('dev-2', messagesRule, 1)
    expect(limiter.size).toBe(3)
    expect(limiter.has('dev-1', 0)).toBe(true)
    expect(limiter.has('dev-1', 1)).toBe(true)
    expect(limiter.has('dev-2', 1)).toBe(false)
  })

  it('keeps at most max keys, forgetting the least recently used', () => {
    const c = clock()
    const limiter = new RateLimiter({ max: 3, now: c.now })
    for (const device of ['a', 'b', 'c']) limiter.check(device, messagesRule, 1)
    limiter.check('a', messagesRule, 1) // a is now the most recent
    limiter.check('d', messagesRule, 1)
    expect(limiter.size).toBe(3)
    expect(['a', 'b', 'c', 'd'].map((d) => limiter.has(d, 0))).toEqual([true, false, true, true])
    // b was evicted, so it starts again with a full bucket.
    expect(limiter.check('b', messagesRule, 1)).toBe('ok')
    expect(limiter.check('b', messagesRule, 1)).toBe('ok')
    expect(limiter.check('b', messagesRule, 1)).toBe('messages')
  })

  it('forget drops every bucket of the device, and only its own', () => {
    const limiter = new RateLimiter({ now: clock().now })
    limiter.check('dev-1', messagesRule, 1)
    limiter.check('dev-1', messagesRule, 1)
    limiter.check('dev-1', bytesRule, 1)
    limiter.check('dev-2', messagesRule, 1)
    limiter.forget('dev-1')
    expect(limiter.size).toBe(1)
    expect(limiter.has('dev-2', 0)).toBe(true)
    expect(limiter.check('dev-1', messagesRule, 1)).toBe('ok')
    limiter.forget('unknown')
    expect(limiter.size).toBe(2)
  })

  it('an evicted key does not keep its device indexed', () => {
    const limiter = new RateLimiter({ max: 1, now: clock().now })
    limiter.check('dev-1', messagesRule, 1)
    limiter.check('dev-2', messagesRule, 1)
    limiter.forget('dev-1')
    expect(limiter.has('dev-2', 0)).toBe(true)
    expect(limiter.size).toBe(1)
  })
})
