import { describe, expect, it } from 'vitest'
import { CryptoError } from '../../crypto/errors.js'
import { hmacSha256 } from '../../crypto/hmac.js'
import { EMPTY_PROTECTED, macStructure } from '../../crypto/structures.js'
import { checkToken, DEFAULT_TOKEN_WINDOW_SECONDS, makeToken, tokenAad } from '../../crypto/token.js'
import { Alg, type DerivedContext } from '../../crypto/types.js'
import { bstr, deviceContext, flip, hex } from './fixtures.js'

const NOW = 1_732_350_000
const NONCE = hex('0011223344556677')
const device = deviceContext(Alg.AES_CCM_16_64_128, 0x01)
const other = deviceContext(Alg.AES_CCM_16_64_128, 0x02, Alg.HMAC_256_64, 0x22)
const registry = new Map<string, DerivedContext>([
  ['01', device],
  ['02', other],
])
const resolve = (kid: Buffer) => registry.get(kid.toString('hex'))
const check = (bytes: Buffer, clientId = 'tiny', now = NOW) =>
  checkToken(resolve, bytes, clientId, now, DEFAULT_TOKEN_WINDOW_SECONDS)

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return err instanceof CryptoError ? err.code : `not a CryptoError: ${String(err)}`
  }
  return undefined
}

describe('one-time CONNECT token', () => {
  it('round-trips and returns the nonce for the caller to remember', () => {
    const token = makeToken(device, 'tiny', NOW, NONCE)
    expect(check(token)).toEqual({ kid: hex('01'), nonce: NONCE, timestamp: NOW })
  })

  it('has the documented layout: 31 bytes with a 1-byte kid', () => {
    const token = makeToken(device, 'tiny', NOW, NONCE)
    // [h'', {4: h'01'}, bstr .cbor [timestamp, nonce], tag]
    expect(token.subarray(0, 22)).toEqual(
      Buffer.concat([hex('8440a1044101'), bstr(hex('821a67419030480011223344556677'))]),
    )
    expect(token.subarray(22, 23)).toEqual(hex('48'))
    expect(token.length).toBe(31)
  })

  it('draws a fresh random nonce by default', () => {
    const a = check(makeToken(device, 'tiny', NOW)) as { nonce: Buffer }
    const b = check(makeToken(device, 'tiny', NOW)) as { nonce: Buffer }
    expect(a.nonce.length).toBe(8)
    expect(a.nonce).not.toEqual(b.nonce)
  })

  it('accepts the edges of the window and refuses one second beyond', () => {
    const token = makeToken(device, 'tiny', NOW, NONCE)
    expect(check(token, 'tiny', NOW + 120)).toEqual({ kid: hex('01'), nonce: NONCE, timestamp: NOW })
    expect(check(token, 'tiny', NOW - 120)).toEqual({ kid: hex('01'), nonce: NONCE, timestamp: NOW })
    expect(check(token, 'tiny', NOW + 121)).toEqual({ failure: 'expired' })
    expect(check(token, 'tiny', NOW - 121)).toEqual({ failure: 'expired' })
    expect(checkToken(resolve, token, 'tiny', NOW + 10, 5)).toEqual({ failure: 'expired' })
  })

  it('is bound to the client id', () => {
    const token = makeToken(device, 'tiny', NOW, NONCE)
    expect(check(token, 'tiny2')).toEqual({ failure: 'bad_tag' })
    expect(check(token, '')).toEqual({ failure: 'bad_tag' })
  })

  it('is bound to the device key', () => {
    expect(check(makeToken(deviceContext(Alg.AES_CCM_16_64_128, 0x03), 'tiny', NOW))).toEqual({
      failure: 'unknown_kid',
    })
    // Device 02's key, claiming kid 01.
    const forged = makeToken(other, 'tiny', NOW, NONCE)
    forged[5] = 0x01
    expect(check(forged)).toEqual({ failure: 'bad_tag' })
    // A context whose AEAD/MAC keys match but whose token key differs (another master secret).
    const sameKid = deviceContext(Alg.AES_CCM_16_64_128, 0x01, Alg.HMAC_256_64, 0x33)
    expect(check(makeToken(sameKid, 'tiny', NOW, NONCE))).toEqual({ failure: 'bad_tag' })
  })

  it('fails when any byte is changed, and never throws', () => {
    const token = makeToken(device, 'tiny', NOW, NONCE)
    for (let i = 0; i < token.length; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const result = check(flip(token, i, mask)) as { failure: string }
        // 5: kid; 7..21: payload content; 23..30: tag. The rest is CBOR framing.
        const authenticated = (i >= 7 && i < 22) || i >= 23
        const expected =
          i === 5 ? ['unknown_kid', 'bad_tag'] : authenticated ? ['bad_tag'] : ['bad_tag', 'malformed']
        expect(expected, `byte ${i} ^ ${mask}`).toContain(result.failure)
      }
    }
  })

  it('fails on every truncation, on oversize input and on a password that is not a token', () => {
    const token = makeToken(device, 'tiny', NOW, NONCE)
    for (let length = 0; length < token.length; length++) {
      expect(check(token.subarray(0, length))).toEqual({ failure: 'malformed' })
    }
    expect(check(Buffer.concat([token, Buffer.alloc(40)]))).toEqual({ failure: 'malformed' })
    expect(check(Buffer.from('correct horse battery staple'))).toEqual({ failure: 'malformed' })
  })

  it.each([
    ['a Partial IV in the header', hex('8440a2044101064101')],
    ['a COSE tag', hex('d18440a1044101')],
  ])('refuses a token with %s as malformed', (_name, prefix) => {
    const token = makeToken(device, 'tiny', NOW, NONCE)
    const rest = token.subarray(6)
    const bytes = Buffer.concat([prefix.subarray(0, prefix.length), rest])
    expect(check(bytes)).toEqual({ failure: 'malformed' })
  })

  it('refuses a correctly tagged payload that is not [uint, 8-byte nonce]', () => {
    // Build the objects with the real token key, so only the payload check can refuse them.
    const tokenWith = (payload: Buffer) => {
      const tag = hmacSha256(device.tokenKey, macStructure(EMPTY_PROTECTED, tokenAad('tiny'), payload), 8)
      return Buffer.concat([hex('8440a1044101'), bstr(payload), bstr(tag)])
    }
    expect(check(tokenWith(hex('821a67419030480011223344556677')))).toEqual({
      kid: hex('01'),
      nonce: NONCE,
      timestamp: NOW,
    })
    for (const payload of [
      '821a674190304700112233445566',
      '83' + '1a67419030480011223344556677' + '00',
      '8220480011223344556677',
      '821a6741903040',
    ]) {
      expect(check(tokenWith(hex(payload))), payload).toEqual({ failure: 'malformed' })
    }
  })

  it('refuses bad arguments when making or checking', () => {
    expect(codeOf(() => makeToken(device, 'tiny', NOW, hex('0011')))).toBe('CRYPTO_ERR_BAD_INPUT')
    expect(codeOf(() => makeToken(device, 'tiny', -1))).toBe('CRYPTO_ERR_BAD_INPUT')
    expect(codeOf(() => makeToken(device, 'tiny', 1.5))).toBe('CRYPTO_ERR_BAD_INPUT')
    expect(codeOf(() => checkToken(resolve, Buffer.alloc(1), 'tiny', NOW, -1))).toBe('CRYPTO_ERR_BAD_INPUT')
  })
})
