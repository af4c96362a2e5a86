import { describe, expect, it } from 'vitest'
import { DIRECTIONS, deriveContext, kdfInfo, nonceFor, senderId } from '../../crypto/context.js'
import { CryptoError } from '../../crypto/errors.js'
import { decodePartialIv, encodePartialIv, MAX_SEQ } from '../../crypto/partial-iv.js'
import { type AeadAlg, Alg, type MasterSecretConfig } from '../../crypto/types.js'
import { AEAD_ALGS, deviceContext, hex, vectors } from './fixtures.js'

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return err instanceof CryptoError ? err.code : `not a CryptoError: ${String(err)}`
  }
  return undefined
}

describe('deriveContext: RFC 8613 Appendix C.1.1', () => {
  const c = vectors.rfc8613.c1_1
  // Our gateway is the RFC's client (Sender ID h''), device kid 01 is the RFC's server.
  const ctx = deriveContext({
    kid: hex(c.serverSenderId as string),
    masterSecret: hex(c.masterSecret as string),
    masterSalt: hex(c.masterSalt as string),
    aead: Alg.AES_CCM_16_64_128,
  })

  it('builds the RFC info structures', () => {
    expect(kdfInfo(Buffer.alloc(0), 10, 'Key', 16).toString('hex')).toBe(c.infoClientSenderKey)
    expect(kdfInfo(hex('01'), 10, 'Key', 16).toString('hex')).toBe(c.infoServerSenderKey)
    expect(kdfInfo(Buffer.alloc(0), 10, 'IV', 13).toString('hex')).toBe(c.infoCommonIv)
  })

  it('derives the RFC sender keys and common IV', () => {
    expect(ctx.aeadKey['gateway-to-device'].toString('hex')).toBe(c.clientSenderKey)
    expect(ctx.aeadKey['device-to-gateway'].toString('hex')).toBe(c.serverSenderKey)
    expect(ctx.commonIv.toString('hex')).toBe(c.commonIv)
  })

  it('builds the RFC nonces for Partial IV 0', () => {
    expect(nonceFor(ctx, 'gateway-to-device', 0).toString('hex')).toBe(c.clientNonceSeq0)
    expect(nonceFor(ctx, 'device-to-gateway', 0).toString('hex')).toBe(c.serverNonceSeq0)
  })

  it('builds the RFC C.4 nonce for sequence number 20', () => {
    expect(nonceFor(ctx, 'gateway-to-device', 20).toString('hex')).toBe(vectors.rfc8613.c4.nonce)
  })
})

describe('deriveContext', () => {
  it('gives each direction, each purpose and each device its own key', () => {
    const a = deviceContext(Alg.AES_CCM_16_64_128, 0x01, Alg.HMAC_256_64, 0x11)
    const b = deviceContext(Alg.AES_CCM_16_64_128, 0x02, Alg.HMAC_256_64, 0x22)
    const keys = [a, b].flatMap((ctx) => [
      ...DIRECTIONS.map((d) => ctx.aeadKey[d].toString('hex')),
      ...DIRECTIONS.map((d) => ctx.macKey[d].subarray(0, 16).toString('hex')),
      ctx.tokenKey.subarray(0, 16).toString('hex'),
    ])
    expect(new Set(keys).size).toBe(10)
  })

  it('shares the gateway sender key between devices that share a master secret (why secrets must be unique)', () => {
    // The gateway's Sender ID is h'' for every device, as in OSCORE: only the master secret (and salt)
    // separates its keys and nonces from one device to the next.
    const a = deviceContext(Alg.AES_CCM_16_64_128, 0x01, Alg.HMAC_256_64, 0x11)
    const b = deviceContext(Alg.AES_CCM_16_64_128, 0x02, Alg.HMAC_256_64, 0x11)
    expect(a.aeadKey['gateway-to-device']).toEqual(b.aeadKey['gateway-to-device'])
    expect(nonceFor(a, 'gateway-to-device', 5)).toEqual(nonceFor(b, 'gateway-to-device', 5))
    expect(a.aeadKey['device-to-gateway']).not.toEqual(b.aeadKey['device-to-gateway'])
  })

  it.each([
    [Alg.AES_CCM_16_64_128, 16, 13],
    [Alg.A128GCM, 16, 12],
    [Alg.A256GCM, 32, 12],
    [Alg.CHACHA20_POLY1305, 32, 12],
  ] as const)('sizes keys and IV for alg %i', (aead, keyLength, ivLength) => {
    const ctx = deviceContext(aead)
    expect(ctx.aeadKey['device-to-gateway'].length).toBe(keyLength)
    expect(ctx.aeadKey['gateway-to-device'].length).toBe(keyLength)
    expect(ctx.commonIv.length).toBe(ivLength)
    expect(ctx.macKey['device-to-gateway'].length).toBe(32)
    expect(ctx.tokenKey.length).toBe(32)
    expect(ctx.mac).toBe(Alg.HMAC_256_64)
    expect(Object.isFrozen(ctx)).toBe(true)
  })

  it('treats a missing master salt as the empty salt', () => {
    const base = { kid: hex('01'), masterSecret: Buffer.alloc(16, 7), aead: Alg.A128GCM } as const
    expect(deriveContext(base)).toEqual(deriveContext({ ...base, masterSalt: Buffer.alloc(0) }))
  })

  const good: MasterSecretConfig = {
    kid: hex('01'),
    masterSecret: Buffer.alloc(16),
    aead: Alg.AES_CCM_16_64_128,
  }
  it.each([
    ['empty kid', { kid: Buffer.alloc(0) }, 'CRYPTO_ERR_BAD_KEY'],
    ['7-byte kid', { kid: Buffer.alloc(7) }, 'CRYPTO_ERR_BAD_KEY'],
    ['15-byte master secret', { masterSecret: Buffer.alloc(15) }, 'CRYPTO_ERR_BAD_KEY'],
    ['24-byte master secret', { masterSecret: Buffer.alloc(24) }, 'CRYPTO_ERR_BAD_KEY'],
    ['65-byte master salt', { masterSalt: Buffer.alloc(65) }, 'CRYPTO_ERR_BAD_KEY'],
    ['unknown aead', { aead: 2 as AeadAlg }, 'CRYPTO_ERR_BAD_ALG'],
    ['MAC alg as aead', { aead: 4 as AeadAlg }, 'CRYPTO_ERR_BAD_ALG'],
    ['unknown mac', { mac: 6 as 4 }, 'CRYPTO_ERR_BAD_ALG'],
  ] as const)('refuses a %s', (_name, change, code) => {
    expect(codeOf(() => deriveContext({ ...good, ...change }))).toBe(code)
  })

  it('says what was expected and never quotes the master secret', () => {
    const message = (masterSecret: Buffer) => {
      try {
        deriveContext({ ...good, masterSecret })
      } catch (err) {
        return (err as Error).message
      }
      return 'no error'
    }
    expect(message(Buffer.alloc(15, 0xab))).toBe('Expected a master secret of 16 or 32 bytes, got 15 bytes')
    expect(message(Buffer.alloc(24, 0xab))).toBe('Expected a master secret of 16 or 32 bytes, got 24 bytes')
  })
})

describe('nonceFor', () => {
  it.each(AEAD_ALGS.map((alg) => [alg]))(
    'lays out S, Sender ID and Partial IV for alg %i',
    (aead: AeadAlg) => {
      const ctx = deviceContext(aead, 0x7f)
      const length = ctx.commonIv.length
      const xorIv = (nonce: Buffer) => Buffer.from(nonce.map((byte, i) => byte ^ ctx.commonIv[i]!))
      const device = xorIv(nonceFor(ctx, 'device-to-gateway', 0x0102030405))
      const expected = Buffer.alloc(length)
      expected[0] = 1
      expected[length - 6] = 0x7f
      hex('0102030405').copy(expected, length - 5)
      expect(device).toEqual(expected)
      const gateway = xorIv(nonceFor(ctx, 'gateway-to-device', 1))
      const expectedGateway = Buffer.alloc(length)
      expectedGateway[length - 1] = 1
      expect(gateway).toEqual(expectedGateway)
    },
  )

  it('pads a 6-byte kid to nonce length - 6', () => {
    const ctx = deriveContext({ kid: hex('a1a2a3a4a5a6'), masterSecret: Buffer.alloc(32), aead: Alg.A256GCM })
    const nonce = nonceFor(ctx, 'device-to-gateway', 0)
    const plain = Buffer.from(nonce.map((byte, i) => byte ^ ctx.commonIv[i]!))
    expect(plain.toString('hex')).toBe('06a1a2a3a4a5a60000000000')
  })

  it('never repeats across directions and sequence numbers', () => {
    const ctx = deviceContext(Alg.AES_CCM_16_64_128)
    const seen = new Set<string>()
    for (const direction of DIRECTIONS) {
      for (let seq = 0; seq < 300; seq++) seen.add(nonceFor(ctx, direction, seq).toString('hex'))
    }
    expect(seen.size).toBe(600)
  })

  it.each([-1, 1.5, MAX_SEQ + 1, Number.NaN])('refuses sequence number %s', (seq) => {
    expect(codeOf(() => nonceFor(deviceContext(Alg.A128GCM), 'device-to-gateway', seq))).toBe(
      'CRYPTO_ERR_BAD_SEQ',
    )
  })

  it('knows the Sender IDs', () => {
    const ctx = deviceContext(Alg.A128GCM, 0x09)
    expect(senderId(ctx, 'device-to-gateway')).toEqual(hex('09'))
    expect(senderId(ctx, 'gateway-to-device')).toEqual(Buffer.alloc(0))
  })
})

describe('partial IV', () => {
  it.each([
    [0, '00'],
    [1, '01'],
    [255, 'ff'],
    [256, '0100'],
    [0x1234, '1234'],
    [65536, '010000'],
    [MAX_SEQ, 'ffffffffff'],
  ])('encodes %i minimally as %s', (seq, piv) => {
    expect(encodePartialIv(seq).toString('hex')).toBe(piv)
    expect(decodePartialIv(hex(piv))).toBe(seq)
  })

  it.each(['', '0001', '000000', '010000000000'])('refuses Partial IV %s', (piv) => {
    expect(decodePartialIv(hex(piv))).toBeUndefined()
  })
})
