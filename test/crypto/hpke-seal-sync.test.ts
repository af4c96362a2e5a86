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
})
