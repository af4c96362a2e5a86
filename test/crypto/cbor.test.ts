import { describe, expect, it } from 'vitest'
import { decodeCbor, encodeCbor } from '../../crypto/cbor.js'
import { CryptoError } from '../../crypto/errors.js'
import { hex } from './fixtures.js'

const limits = { maxBytes: 1024 }

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return err instanceof CryptoError ? err.code : `not a CryptoError: ${String(err)}`
  }
  return undefined
}

describe('decodeCbor', () => {
  it('decodes the value set of our wire formats', () => {
    const value = decodeCbor(hex('8640a2044101064212346361 2f62f6f520'.replace(/ /g, '')), limits)
    expect(value).toEqual([
      Buffer.alloc(0),
      new Map<number, Buffer>([
        [4, hex('01')],
        [6, hex('1234')],
      ]),
      'a/b',
      null,
      true,
      -1,
    ])
  })

  it('returns byte strings as Buffers that do not alias the input', () => {
    const input = hex('43010203')
    const value = decodeCbor(input, limits) as Buffer
    input[1] = 0xff
    expect(value).toEqual(hex('010203'))
  })

  it.each([
    ['trailing bytes', '0100'],
    ['two items', '8040'],
    ['truncated array', '83'],
    ['truncated byte string', '4301'],
    ['indefinite-length array', '9f01ff'],
    ['indefinite-length byte string', '5f4101ff'],
    ['indefinite-length map', 'bf0401ff'],
    ['non-minimal integer', '1817'],
    ['non-minimal 2-byte integer', '190017'],
    ['non-minimal byte string length', '580101'],
    ['non-minimal array length', '980101'],
    ['duplicate map key', 'a204010402'],
    ['map keys out of order', 'a206010402'],
    ['tag (bignum)', 'c24101'],
    ['tag (COSE_Encrypt0)', 'd08340a040'],
    ['tag (encoded CBOR)', 'd8184101'],
    ['half float', 'f93c00'],
    ['double float', 'fb3ff0000000000000'],
    ['undefined', 'f7'],
    ['simple value 16', 'f0'],
    ['integer above 2^53', '1b0020000000000000'],
    ['invalid UTF-8 text', '62c328'],
    ['map with a byte string key', 'a1410101'],
    ['lone break', 'ff'],
  ])('refuses %s', (_name, input) => {
    expect(codeOf(() => decodeCbor(hex(input), limits))).toBe('CRYPTO_ERR_CBOR_MALFORMED')
  })

  it('refuses empty input', () => {
    expect(codeOf(() => decodeCbor(Buffer.alloc(0), limits))).toBe('CRYPTO_ERR_CBOR_MALFORMED')
  })

  it('refuses input over the byte limit before parsing it', () => {
    expect(codeOf(() => decodeCbor(hex('43010203'), { maxBytes: 3 }))).toBe('CRYPTO_ERR_CBOR_OVERSIZE')
    expect(decodeCbor(hex('43010203'), { maxBytes: 4 })).toEqual(hex('010203'))
  })

  it('bounds nesting depth exactly', () => {
    expect(decodeCbor(hex('818101'), { maxBytes: 16, maxDepth: 2 })).toEqual([[1]])
    expect(codeOf(() => decodeCbor(hex('81818101'), { maxBytes: 16, maxDepth: 2 }))).toBe(
      'CRYPTO_ERR_CBOR_MALFORMED',
    )
    expect(codeOf(() => decodeCbor(hex('a101a10101'), { maxBytes: 16, maxDepth: 1 }))).toBe(
      'CRYPTO_ERR_CBOR_MALFORMED',
    )
    const deep = Buffer.concat([Buffer.alloc(500, 0x81), hex('01')])
    expect(codeOf(() => decodeCbor(deep, { maxBytes: 1024 }))).toBe('CRYPTO_ERR_CBOR_MALFORMED')
  })
})

describe('encodeCbor', () => {
  it('encodes Buffers as byte strings and maps in deterministic key order', () => {
    const map = new Map<number | string, Buffer | number>([
      [6, hex('00')],
      [4, hex('01')],
      [-1, 3],
      ['a', 1],
    ])
    expect(encodeCbor([Buffer.alloc(0), map, 'topic', null, 1099511627775]).toString('hex')).toBe(
      '8540a404410106410020036161016574 6f7069 63f61b000000ffffffffff'.replace(/ /g, ''),
    )
  })

  it('refuses floats and unsafe integers', () => {
    expect(codeOf(() => encodeCbor(1.5))).toBe('CRYPTO_ERR_CBOR_ENCODE')
    expect(codeOf(() => encodeCbor([2 ** 53]))).toBe('CRYPTO_ERR_CBOR_ENCODE')
  })

  it('round-trips through the strict decoder', () => {
    const value = [hex(''), new Map([[4, hex('0a0b')]]), 'x', 0, -24, 255, 65536]
    expect(decodeCbor(encodeCbor(value), limits)).toEqual(value)
  })
})
