import { describe, expect, it } from 'vitest'
import { type Attempt, identityKey, Lockout } from '../../../gateway/auth/lockout.js'

const settings = { maxFailures: 3, windowSeconds: 60, lockSeconds: 30, maxEntries: 100 }

function clocked() {
  let t = 1_000_000
  return { now: () => t, advance: (ms: number) => (t += ms) }
}

const password = (identity: string, address: string): Attempt => ({ kind: 'password', identity, address })

describe('Lockout', () => {
  it('slows a failing password identity from one address, then locks that pair for lockSeconds', () => {
    const clock = clocked()
    const lockout = new Lockout(settings, clock.now)
    const a = password('dev', '10.0.0.9')
    expect(lockout.check(a)).toEqual({ locked: false, delayMs: 0 })
    expect(lockout.fail(a)).toEqual([])
    expect(lockout.fail(a)).toEqual([])
    expect(lockout.check(a)).toEqual({ locked: false, delayMs: 100 })
    expect(lockout.fail(a)).toEqual(['addr:10.0.0.9', 'pair:password:dev@10.0.0.9'])
    expect(lockout.check(a)).toEqual({
      locked: true,
      scope: 'identity',
      key: 'pair:password:dev@10.0.0.9',
      retryAfterMs: 30_000,
    })
    clock.advance(29_999)
    expect(lockout.check(a)).toMatchObject({ locked: true, retryAfterMs: 1 })
    clock.advance(1)
    expect(lockout.check(a)).toMatchObject({ locked: false })
  })

  it('wrong passwords from one address do not lock the identity at another address (only slow it)', () => {
    const lockout = new Lockout(settings, clocked().now)
    for (let i = 0; i < 3; i++) lockout.fail(password('dev', '10.0.0.66'))
    expect(lockout.check(password('dev', '10.0.0.66'))).toMatchObject({ locked: true })
    // The real device elsewhere: not locked, slowed by the identity's count from anywhere (3 failures).
    expect(lockout.check(password('dev', '10.0.0.9'))).toEqual({ locked: false, delayMs: 200 })
  })

  it('credential-less attempts count for the address only: the client id is no identity', () => {
    const lockout = new Lockout(settings, clocked().now)
    for (let i = 0; i < 6; i++) lockout.fail({ kind: 'none', address: '10.0.0.66' })
    // A PSK device of that name elsewhere, and a password device of that name elsewhere: untouched.
    expect(lockout.check({ kind: 'psk', identity: 'devA', address: '10.0.0.9' })).toEqual({
      locked: false,
      delayMs: 0,
    })
    expect(lockout.check(password('devA', '10.0.0.9'))).toEqual({ locked: false, delayMs: 0 })
  })

  it('a locked address refuses passwords but never a credential that proves a key', () => {
    const lockout = new Lockout(settings, clocked().now)
    for (let i = 0; i < 3; i++) lockout.fail({ kind: 'none', address: '192.0.2.1' })
    expect(lockout.check(password('other', '192.0.2.1'))).toMatchObject({ locked: true, scope: 'address' })
    for (const kind of ['psk', 'certificate', 'token'] as const) {
      expect(lockout.check({ kind, identity: 'devB', address: '192.0.2.1' })).toEqual({
        locked: false,
        delayMs: 0,
      })
    }
  })

  it('a key-proving credential is slowed only by its own failures from its source, never locked', () => {
    const lockout = new Lockout(settings, clocked().now)
    const psk: Attempt = { kind: 'psk', identity: 'devC', address: '192.0.2.2' }
    // Others failing as devC elsewhere do not slow it.
    for (let i = 0; i < 10; i++) lockout.fail({ kind: 'psk', identity: 'devC', address: '192.0.2.99' })
    expect(lockout.check(psk)).toEqual({ locked: false, delayMs: 0 })
    for (let i = 0; i < 10; i++) lockout.fail(psk)
    expect(lockout.check(psk)).toEqual({ locked: false, delayMs: 2000 })
  })

  it('kinds of credential have their own namespaces', () => {
    const lockout = new Lockout(settings, clocked().now)
    for (let i = 0; i < 3; i++) lockout.fail({ kind: 'psk', identity: 'devA', address: '192.0.2.3' })
    expect(lockout.check(password('devA', '192.0.2.4'))).toEqual({ locked: false, delayMs: 0 })
  })

  it('a success clears the pair but not the address', () => {
    const lockout = new Lockout({ ...settings, maxFailures: 10 }, clocked().now)
    const a = password('a', '1.2.3.4')
    lockout.fail(a)
    lockout.fail(a)
    lockout.succeed(a)
    expect(lockout.check({ kind: 'none', address: '1.2.3.4' })).toEqual({ locked: false, delayMs: 100 })
    expect(lockout.check({ kind: 'psk', identity: 'a', address: '1.2.3.4' })).toEqual({
      locked: false,
      delayMs: 0,
    })
  })

  it('the pause doubles and is capped at 2 s', () => {
    const lockout = new Lockout({ ...settings, maxFailures: 100 }, clocked().now)
    const delays: number[] = []
    for (let i = 0; i < 8; i++) {
      lockout.fail(password('x', '10.1.1.1'))
      delays.push((lockout.check(password('x', '10.1.1.1')) as { delayMs: number }).delayMs)
    }
    expect(delays).toEqual([0, 100, 200, 400, 800, 1600, 2000, 2000])
  })

  it('stays bounded by maxEntries under a spray of 100,000 identities', () => {
    const lockout = new Lockout({ ...settings, maxFailures: 1000 }, clocked().now)
    for (let i = 0; i < 100_000; i++) lockout.fail(password(`spray-${i}`, `10.2.${i >> 8}.${i & 255}`))
    expect(lockout.size).toBe(100)
  })

  it('a spray of junk from 10,050 addresses does not release a lock', () => {
    const lockout = new Lockout(settings, clocked().now)
    const victim = password('dev', '10.9.9.9')
    for (let i = 0; i < 3; i++) lockout.fail(victim)
    expect(lockout.check(victim)).toMatchObject({ locked: true })
    for (let i = 0; i < 10_050; i++) lockout.fail({ kind: 'none', address: `10.3.${i >> 8}.${i & 255}` })
    expect(lockout.check(victim)).toMatchObject({ locked: true, scope: 'identity' })
  })

  it('locks on a configured device cannot be evicted by locks of junk names and addresses', () => {
    const lockout = new Lockout(settings, clocked().now)
    const victim: Attempt = { ...password('dev', '10.9.9.9'), known: true }
    for (let i = 0; i < 3; i++) lockout.fail(victim)
    // 300 junk locks (3 failures each) with random names from random addresses: past maxEntries (100).
    for (let i = 0; i < 300; i++) {
      for (let j = 0; j < 3; j++) lockout.fail(password(`junk-${i}`, `10.4.${i >> 8}.${i & 255}`))
    }
    expect(lockout.check(victim)).toMatchObject({ locked: true, scope: 'identity' })
    expect(lockout.size).toBeLessThanOrEqual(3 * 100)
  })

  it('identity keys are cut to 256 characters', () => {
    expect(identityKey('password', 'x'.repeat(10_000))).toHaveLength('id:password:'.length + 256)
  })
})
