import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { CryptoError } from '../../crypto/errors.js'
import { sign1, verify1 } from '../../crypto/sign1.js'
import { Alg, type SignAlg } from '../../crypto/types.js'
import { bstr, flip, hex, signingKeys } from './fixtures.js'

const MAX = 4096
const KID = Buffer.from('gw-1')
const AAD = Buffer.from('uplink')
const payload = Buffer.from('{"id":"tiny","t":1732350000,"temp":21.5,"hum":48.25,"batt":3.01}')
const ALGS: Array<[string, SignAlg]> = [
  ['Ed25519', Alg.EDDSA],
  ['ES256', Alg.ES256],
]

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return err instanceof CryptoError ? err.code : `not a CryptoError: ${String(err)}`
  }
  return undefined
}

describe.each(ALGS)('Sign1 with %s', (_name, alg) => {
  const { privateKey, publicKey } = signingKeys(alg as -8 | -7)
  const resolve = (kid: Buffer): KeyObject | undefined => (kid.equals(KID) ? publicKey : undefined)

  it('round-trips', () => {
    const signed = sign1(privateKey, alg, KID, payload, AAD)
    expect(verify1(resolve, signed, AAD, MAX)).toEqual({ payload, kid: KID, alg })
    const empty = sign1(privateKey, alg, KID, Buffer.alloc(0), Buffer.alloc(0))
    expect(verify1(resolve, empty, Buffer.alloc(0), MAX)).toEqual({ payload: Buffer.alloc(0), kid: KID, alg })
  })

  it('has the documented layout and size', () => {
    const signed = sign1(privateKey, alg, hex('01'), payload, AAD)
    const protectedHeader = alg === Alg.EDDSA ? '43a10127' : '43a10126'
    expect(signed.subarray(0, 9).toString('hex')).toBe(`84${protectedHeader}a1044101`)
    expect(signed.subarray(9, 75)).toEqual(bstr(payload))
    expect(signed.subarray(75, 77).toString('hex')).toBe('5840')
    expect(signed.length).toBe(141)
  })

  it('fails when any byte is changed, and never throws', () => {
    const signed = sign1(privateKey, alg, KID, payload, AAD)
    const kidStart = 8
    for (let i = 0; i < signed.length; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const result = verify1(resolve, flip(signed, i, mask), AAD, MAX) as { failure: string }
        const expected =
          i >= kidStart && i < kidStart + KID.length ? ['unknown_kid'] : ['bad_signature', 'malformed']
        expect(expected, `byte ${i} ^ ${mask}`).toContain(result.failure)
      }
    }
  })

  it('fails with another external AAD, another key, or an unknown kid', () => {
    const signed = sign1(privateKey, alg, KID, payload, AAD)
    expect(verify1(resolve, signed, Buffer.from('downlink'), MAX)).toEqual({ failure: 'bad_signature' })
    const other =
      alg === Alg.EDDSA
        ? generateKeyPairSync('ed25519')
        : generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    expect(verify1(() => other.publicKey, signed, AAD, MAX)).toEqual({ failure: 'bad_signature' })
    expect(verify1(() => undefined, signed, AAD, MAX)).toEqual({ failure: 'unknown_kid' })
  })

  it('fails when the header names an alg that does not fit the key', () => {
    const signed = sign1(privateKey, alg, KID, payload, AAD)
    const swapped = Buffer.from(signed)
    swapped[4] = alg === Alg.EDDSA ? 0x26 : 0x27
    expect(verify1(resolve, swapped, AAD, MAX)).toEqual({ failure: 'bad_signature' })
    const wrongType = alg === Alg.EDDSA ? signingKeys(Alg.ES256).publicKey : signingKeys(Alg.EDDSA).publicKey
    expect(verify1(() => wrongType, signed, AAD, MAX)).toEqual({ failure: 'bad_signature' })
  })

  it('fails on every truncation and on oversize input', () => {
    const signed = sign1(privateKey, alg, KID, payload, AAD)
    for (let length = 0; length < signed.length; length++) {
      expect(verify1(resolve, signed.subarray(0, length), AAD, MAX)).toEqual({ failure: 'malformed' })
    }
    expect(verify1(resolve, signed, AAD, signed.length - 1)).toEqual({ failure: 'oversize' })
  })

  it('refuses a key of the wrong type or a public key when signing', () => {
    const wrong = alg === Alg.EDDSA ? signingKeys(Alg.ES256).privateKey : signingKeys(Alg.EDDSA).privateKey
    expect(codeOf(() => sign1(wrong, alg, KID, payload, AAD))).toBe('CRYPTO_ERR_BAD_KEY')
    expect(codeOf(() => sign1(publicKey, alg, KID, payload, AAD))).toBe('CRYPTO_ERR_BAD_KEY')
    expect(codeOf(() => sign1(privateKey, alg, Buffer.alloc(0), payload, AAD))).toBe('CRYPTO_ERR_BAD_KEY')
    expect(codeOf(() => sign1(privateKey, -35 as SignAlg, KID, payload, AAD))).toBe('CRYPTO_ERR_BAD_ALG')
  })
})

describe('Sign1 framing', () => {
  const { privateKey, publicKey } = signingKeys(Alg.EDDSA)
  const signed = sign1(privateKey, Alg.EDDSA, hex('01'), payload, AAD)
  const body = signed.subarray(5)
  const tail = signed.subarray(9)
  const frame = (...parts: Buffer[]) => Buffer.concat(parts)
  const resolve = () => publicKey

  it.each([
    ['trailing byte', frame(signed, hex('00'))],
    ['COSE_Sign1 tag 18', frame(hex('d2'), signed)],
    ['empty protected header', frame(hex('8440'), body)],
    ['protected header with two entries', frame(hex('8446a20127044101'), body)],
    ['protected header not a map', frame(hex('844127'), body)],
    ['protected header with trailing bytes', frame(hex('8444a1012700'), body)],
    ['non-minimal alg in the protected header', frame(hex('8444a1013807'), body)],
    ['unknown alg', frame(hex('8444a1013822'), body)],
    ['alg in the unprotected header', frame(hex('8443a10127a20127044101'), tail)],
    ['no kid', frame(hex('8443a10127a0'), tail)],
    ['kid of 33 bytes', frame(hex('8443a10127a10458 21'.replace(' ', '')), Buffer.alloc(33, 1), tail)],
    [
      'signature of 63 bytes',
      frame(signed.subarray(0, signed.length - 66), hex('583f'), signed.subarray(signed.length - 63)),
    ],
    ['payload detached (null)', frame(hex('8443a10127a1044101f6'), signed.subarray(signed.length - 66))],
  ])('refuses a %s as malformed', (_name, bytes) => {
    expect(verify1(resolve, bytes, AAD, MAX)).toEqual({ failure: 'malformed' })
  })

  it('is deterministic for Ed25519, randomized for ES256', () => {
    expect(sign1(privateKey, Alg.EDDSA, hex('01'), payload, AAD)).toEqual(signed)
    const es = signingKeys(Alg.ES256).privateKey
    expect(sign1(es, Alg.ES256, hex('01'), payload, AAD)).not.toEqual(
      sign1(es, Alg.ES256, hex('01'), payload, AAD),
    )
  })
})
