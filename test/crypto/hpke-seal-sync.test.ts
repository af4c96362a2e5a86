import { generateKeyPairSync } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { generateHpkeKeyPair, hpkeOpen, hpkeSeal } from '../../crypto/hpke.js'
import { HpkeSealer } from '../../crypto/hpke-seal-sync.js'

describe('HpkeSealer (node:crypto) against crypto/hpke.ts (hpke-js)', () => {
  it('what it seals opens with hpkeOpen, bound to the topic, and never repeats', async () => {
    const pair = await generateHpkeKeyPair()
    const kid = Buffer.from('analytics')
    const sealer = new HpkeSealer({ kid, publicKey: pair.publicKey })
    for (const size of [0, 1, 23, 24, 255, 256, 4000]) {
      const plaintext = Buffer.alloc(size, 0x5a)
      const sealed = sealer.seal(plaintext, 'devices/a/t')
      expect(await hpkeOpen({ kid, privateKey: pair.privateKey }, sealed, 'devices/a/t', 8192)).toEqual({
        plaintext,
      })
      expect(await hpkeOpen({ kid, privateKey: pair.privateKey }, sealed, 'devices/a/u', 8192)).toEqual({
        failure: 'bad_tag',
      })
    }
    const a = sealer.seal(Buffer.from('x'), 't')
    const b = sealer.seal(Buffer.from('x'), 't')
    expect(a.equals(b)).toBe(false)
  })

  it('has the same shape as hpkeSeal (same length for the same input)', async () => {
    const pair = await generateHpkeKeyPair()
    const recipient = { kid: Buffer.from([1, 2]), publicKey: pair.publicKey }
    const fromJs = await hpkeSeal(recipient, Buffer.from('hello'), 't')
    const fromNode = new HpkeSealer(recipient).seal(Buffer.from('hello'), 't')
    expect(fromNode.length).toBe(fromJs.length)
    expect(fromNode.subarray(0, 8)).toEqual(fromJs.subarray(0, 8))
  })

  it('refuses a malformed recipient key', () => {
    expect(() => new HpkeSealer({ kid: Buffer.from('k'), publicKey: Buffer.alloc(31) })).toThrow(/32-byte/)
    expect(() => new HpkeSealer({ kid: Buffer.alloc(0), publicKey: Buffer.alloc(32) })).toThrow(/kid/)
  })

  it('refuses, when made, a recipient key of low order, to which nothing could ever be sealed', () => {
    const lowOrder = [
      '00'.repeat(32),
      `01${'00'.repeat(31)}`,
      'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
      'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
    ]
    for (const hex of lowOrder) {
      expect(() => new HpkeSealer({ kid: Buffer.from('k'), publicKey: Buffer.from(hex, 'hex') })).toThrow(
        /unusable \(low order\)/,
      )
    }
    const usable = generateKeyPairSync('x25519')
      .publicKey.export({ type: 'spki', format: 'der' })
      .subarray(-32)
    expect(
      new HpkeSealer({ kid: Buffer.from('k'), publicKey: usable }).seal(Buffer.from('x'), 't').length,
    ).toBeGreaterThan(32)
  })
})
