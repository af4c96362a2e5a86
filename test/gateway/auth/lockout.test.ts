import { describe, expect, it } from 'vitest'
import { addressKey, identityKey, Lockout } from '../../../gateway/auth/lockout.js'

const settings = { maxFailures: 3, windowSeconds: 60, lockSeconds: 30, maxEntries: 100 }

function clocked() {
  let t = 1_000_000
  return { now: () => t, advance: (ms: number) => (t += ms) }
}

describe('Lockout', () => {
  it('slows a failing identity, then locks it for lockSeconds, then lets it try again', () => {
    const clock = clocked()
    const lockout = new Lockout(settings, clock.now)
    const keys = [identityKey('dev'), addressKey('10.0.0.9')]
    expect(lockout.check(keys)).toEqual({ locked: false, delayMs: 0 })
    expect(lockout.fail(keys)).toEqual([])
    expect(lockout.check(keys)).toEqual({ locked: false, delayMs: 0 })
    expect(lockout.fail(keys)).toEqual([])
    expect(lockout.check(keys)).toEqual({ locked: false, delayMs: 100 })
    expect(lockout.fail(keys)).toEqual(['id:dev', 'addr:10.0.0.9'])
    expect(lockout.check(keys)).toEqual({ locked: true, key: 'id:dev', retryAfterMs: 30_000 })
    clock.advance(29_999)
    expect(lockout.check(keys)).toMatchObject({ locked: true, retryAfterMs: 1 })
    clock.advance(1)
    expect(lockout.check(keys)).toEqual({ locked: false, delayMs: 0 })
  })

  it('a success clears the identity but not the address', () => {
    const lockout = new Lockout(settings, clocked().now)
    lockout.fail([identityKey('a'), addressKey('1.2.3.4')])
    lockout.fail([identityKey('a'), addressKey('1.2.3.4')])
    lockout.succeed(identityKey('a'))
    expect(lockout.check([identityKey('a')])).toEqual({ locked: false, delayMs: 0 })
    expect(lockout.check([addressKey('1.2.3.4')])).toEqual({ locked: false, delayMs: 100 })
  })

  it('the pause doubles and is capped at 2 s', () => {
    const lockout = new Lockout({ ...settings, maxFailures: 100 }, clocked().now)
    const delays: number[] = []
    for (let i = 0; i < 8; i++) {
      lockout.fail([identityKey('x')])
      delays.push((lockout.check([identityKey('x')]) as { delayMs: number }).delayMs)
    }
    expect(delays).toEqual([0, 100, 200, 400, 800, 1600, 2000, 2000])
  })

  it('stays bounded by maxEntries under a spray of 100,000 identities', () => {
    const lockout = new Lockout(settings, clocked().now)
    for (let i = 0; i < 100_000; i++) lockout.fail([identityKey(`spray-${i}`)])
    expect(lockout.size).toBe(100)
  })

  it('identity keys are cut to 256 characters', () => {
    expect(identityKey('x'.repeat(10_000))).toHaveLength(3 + 256)
  })
})
