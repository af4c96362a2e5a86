import { beforeAll, describe, expect, it } from 'vitest'
import { hashPassword } from '../../../gateway/auth/password.js'
import { hashFingerprint, passwordVerifier } from '../../../gateway/auth/password-verifier.js'
import { VerifiedPasswords } from '../../../gateway/auth/verified-passwords.js'
import { DeviceRegistry, type DeviceSpec } from '../../../gateway/registry.js'

const FAST = { ln: 10, r: 8, p: 1 }
const pw = (s: string) => Buffer.from(s, 'utf8')

/** Counts the hash checks of each device (real scrypt underneath). */
const runs = new Map<string, number>()

function spec(id: string, encoded: string, withFingerprint = true): DeviceSpec {
  const verify = passwordVerifier(encoded)
  return {
    id,
    username: id,
    password: (password) => {
      runs.set(id, (runs.get(id) ?? 0) + 1)
      return verify(password)
    },
    ...(withFingerprint && { passwordFingerprint: hashFingerprint(encoded) }),
  }
}

function device(registry: DeviceRegistry, id: string) {
  const d = registry.byDeviceId(id)
  if (!d) throw new Error(`no device ${id}`)
  return d
}

const runsOf = (id: string) => runs.get(id) ?? 0

let hashA: string
let hashA2: string
let hashB: string
beforeAll(async () => {
  ;[hashA, hashA2, hashB] = await Promise.all([
    hashPassword('password a', FAST),
    hashPassword('password a2', FAST),
    hashPassword('password b', FAST),
  ])
})

describe('VerifiedPasswords', () => {
  it('a hit: the same device with the same password skips the hash the second time', async () => {
    runs.clear()
    const registry = new DeviceRegistry([spec('a', hashA)])
    const cache = new VerifiedPasswords(10)
    expect(await cache.check(device(registry, 'a'), pw('password a'))).toBe(true)
    expect(runsOf('a')).toBe(1)
    expect(cache.size).toBe(1)
    expect(await cache.check(device(registry, 'a'), pw('password a'))).toBe(true)
    expect(await cache.check(device(registry, 'a'), pw('password a'))).toBe(true)
    expect(runsOf('a')).toBe(1)
  })

  it('a miss: a wrong password always runs the hash, is refused, and leaves the entry as it was', async () => {
    runs.clear()
    const registry = new DeviceRegistry([spec('a', hashA)])
    const cache = new VerifiedPasswords(10)
    expect(await cache.check(device(registry, 'a'), pw('wrong'))).toBe(false)
    expect(cache.size).toBe(0)
    expect(await cache.check(device(registry, 'a'), pw('password a'))).toBe(true)
    for (const wrong of ['password a ', 'password b', '']) {
      expect(await cache.check(device(registry, 'a'), pw(wrong)), wrong).toBe(false)
    }
    expect(runsOf('a')).toBe(5)
    // The right password still hits.
    expect(await cache.check(device(registry, 'a'), pw('password a'))).toBe(true)
    expect(runsOf('a')).toBe(5)
  })

  it("one device's verified password is nothing for another device with the same hash", async () => {
    runs.clear()
    const registry = new DeviceRegistry([spec('a', hashA), spec('twin', hashA)])
    const cache = new VerifiedPasswords(10)
    expect(await cache.check(device(registry, 'a'), pw('password a'))).toBe(true)
    expect(await cache.check(device(registry, 'twin'), pw('password a'))).toBe(true)
    expect(runsOf('twin')).toBe(1)
  })

  it('a reload that changes the hash forgets the entry: the old password is checked and refused', async () => {
    runs.clear()
    const before = new DeviceRegistry([spec('a', hashA), spec('b', hashB)])
    const cache = new VerifiedPasswords(10)
    expect(await cache.check(device(before, 'a'), pw('password a'))).toBe(true)
    expect(await cache.check(device(before, 'b'), pw('password b'))).toBe(true)
    const after = new DeviceRegistry([spec('a', hashA2), spec('b', hashB)])
    cache.retain(after)
    // a's entry is gone; b's hash is the same text, so b's entry is kept.
    expect(cache.size).toBe(1)
    expect(await cache.check(device(after, 'a'), pw('password a'))).toBe(false)
    expect(await cache.check(device(after, 'a'), pw('password a2'))).toBe(true)
    expect(await cache.check(device(after, 'b'), pw('password b'))).toBe(true)
    expect(runsOf('a')).toBe(3)
    expect(runsOf('b')).toBe(1)
  })

  it('a device whose hash changed is checked again even without retain (the fingerprint is compared)', async () => {
    runs.clear()
    const before = new DeviceRegistry([spec('a', hashA)])
    const cache = new VerifiedPasswords(10)
    expect(await cache.check(device(before, 'a'), pw('password a'))).toBe(true)
    const after = new DeviceRegistry([spec('a', hashA2)])
    expect(await cache.check(device(after, 'a'), pw('password a'))).toBe(false)
    expect(runsOf('a')).toBe(2)
  })

  it('a reload that removes the device forgets it', async () => {
    const cache = new VerifiedPasswords(10)
    expect(await cache.check(device(new DeviceRegistry([spec('a', hashA)]), 'a'), pw('password a'))).toBe(
      true,
    )
    cache.retain(new DeviceRegistry([spec('b', hashB)]))
    expect(cache.size).toBe(0)
  })

  it('is bounded: past maxEntries the least recently verified device is forgotten', async () => {
    runs.clear()
    const ids = ['d0', 'd1', 'd2']
    const registry = new DeviceRegistry(ids.map((id) => spec(id, hashA)))
    const cache = new VerifiedPasswords(2)
    for (const id of ids) expect(await cache.check(device(registry, id), pw('password a'))).toBe(true)
    expect(cache.size).toBe(2)
    // d0 was forgotten: checked again; d2 was kept.
    expect(await cache.check(device(registry, 'd2'), pw('password a'))).toBe(true)
    expect(await cache.check(device(registry, 'd0'), pw('password a'))).toBe(true)
    expect(ids.map(runsOf)).toEqual([2, 1, 1])
  })

  it('with 0 entries, or for a device without a fingerprint, every check runs the hash', async () => {
    runs.clear()
    const registry = new DeviceRegistry([spec('a', hashA), spec('plain', hashA, false)])
    const off = new VerifiedPasswords(0)
    const on = new VerifiedPasswords(10)
    for (let i = 0; i < 2; i++) {
      expect(await off.check(device(registry, 'a'), pw('password a'))).toBe(true)
      expect(await on.check(device(registry, 'plain'), pw('password a'))).toBe(true)
    }
    expect(off.size).toBe(0)
    expect(on.size).toBe(0)
    expect([runsOf('a'), runsOf('plain')]).toEqual([2, 2])
  })

  it('refuses a device without a password hash (after the dummy work)', async () => {
    const registry = new DeviceRegistry([{ id: 'psk', psk: { identity: 'psk', key: Buffer.alloc(16, 1) } }])
    expect(await new VerifiedPasswords(10).check(device(registry, 'psk'), pw('anything'))).toBe(false)
  })

  it('refuses a negative or fractional size', () => {
    expect(() => new VerifiedPasswords(-1)).toThrow(
      'Expected maxEntries to be an integer of 0 or more, got -1',
    )
    expect(() => new VerifiedPasswords(1.5)).toThrow(
      'Expected maxEntries to be an integer of 0 or more, got 1.5',
    )
  })
})
