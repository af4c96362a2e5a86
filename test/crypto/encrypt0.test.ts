import { describe, expect, it } from 'vitest'
import { deriveContext } from '../../crypto/context.js'
import { open, readHeader, seal } from '../../crypto/encrypt0.js'
import { CryptoError } from '../../crypto/errors.js'
import { MAX_SEQ } from '../../crypto/partial-iv.js'
import { type AeadAlg, Alg, type Direction } from '../../crypto/types.js'
import { AEAD_ALGS, bstr, deviceContext, flip, head, hex } from './fixtures.js'

const TOPIC = 'devices/tiny/sealed'
const MAX = 4096
const reading = Buffer.from('{"id":"tiny","t":1732350000,"temp":21.5,"hum":48.25,"batt":3.01}')
const TAG_LENGTH: Record<AeadAlg, number> = { 10: 8, 1: 16, 3: 16, 24: 16 }

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return err instanceof CryptoError ? err.code : `not a CryptoError: ${String(err)}`
  }
  return undefined
}

describe.each(AEAD_ALGS.map((alg) => [alg]))('Encrypt0 with alg %i', (aead: AeadAlg) => {
  const ctx = deviceContext(aead)
  const directions: Direction[] = ['device-to-gateway', 'gateway-to-device']

  it.each(directions)('round-trips %s at the edges of the sequence range', (direction) => {
    for (const seq of [0, 1, 255, 256, 65535, 65536, MAX_SEQ]) {
      for (const plaintext of [Buffer.alloc(0), reading]) {
        const sealed = seal(ctx, direction, seq, plaintext, TOPIC)
        expect(open(ctx, direction, sealed, TOPIC, MAX)).toEqual({ plaintext, seq })
        expect(readHeader(sealed, MAX)).toEqual({ kid: hex('01'), seq })
      }
    }
  })

  it('is deterministic for a given key, sequence number and input', () => {
    expect(seal(ctx, 'device-to-gateway', 9, reading, TOPIC)).toEqual(
      seal(ctx, 'device-to-gateway', 9, reading, TOPIC),
    )
    expect(seal(ctx, 'device-to-gateway', 9, reading, TOPIC)).not.toEqual(
      seal(ctx, 'device-to-gateway', 10, reading, TOPIC),
    )
  })

  it('has the documented layout and size', () => {
    const sealed = seal(ctx, 'device-to-gateway', 0x1234, reading, TOPIC)
    const ctLength = reading.length + TAG_LENGTH[aead]
    // [h'', {4: h'01', 6: h'1234'}, bstr(ciphertext || tag)]
    expect(sealed.subarray(0, 12).toString('hex')).toBe(
      `8340a204410106421234 58${ctLength.toString(16)}`.replace(' ', ''),
    )
    expect(sealed.length).toBe(12 + ctLength)
  })

  it('fails with bad_tag or malformed when any byte is changed, and never throws', () => {
    const sealed = seal(ctx, 'device-to-gateway', 0x1234, reading, TOPIC)
    const ciphertextStart = sealed.length - reading.length - TAG_LENGTH[aead]
    for (let i = 0; i < sealed.length; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const result = open(ctx, 'device-to-gateway', flip(sealed, i, mask), TOPIC, MAX)
        if (i >= ciphertextStart) expect(result, `byte ${i} ^ ${mask}`).toEqual({ failure: 'bad_tag' })
        else
          expect(['bad_tag', 'malformed'], `byte ${i} ^ ${mask}`).toContain(
            (result as { failure: string }).failure,
          )
      }
    }
  })

  it('fails with the other direction key', () => {
    const sealed = seal(ctx, 'device-to-gateway', 3, reading, TOPIC)
    expect(open(ctx, 'gateway-to-device', sealed, TOPIC, MAX)).toEqual({ failure: 'bad_tag' })
  })

  it('fails under another device context', () => {
    const sealed = seal(ctx, 'device-to-gateway', 3, reading, TOPIC)
    const sameKidOtherSecret = deviceContext(aead, 0x01, Alg.HMAC_256_64, 0x22)
    const otherKid = deviceContext(aead, 0x02)
    expect(open(sameKidOtherSecret, 'device-to-gateway', sealed, TOPIC, MAX)).toEqual({ failure: 'bad_tag' })
    expect(open(otherKid, 'device-to-gateway', sealed, TOPIC, MAX)).toEqual({ failure: 'bad_tag' })
    // Device 02 sealing under its own key but claiming kid 01 in the header.
    const forged = seal(otherKid, 'device-to-gateway', 3, reading, TOPIC)
    forged[5] = 0x01
    expect(readHeader(forged, MAX)).toEqual({ kid: hex('01'), seq: 3 })
    expect(open(ctx, 'device-to-gateway', forged, TOPIC, MAX)).toEqual({ failure: 'bad_tag' })
  })

  it('fails on another topic', () => {
    const sealed = seal(ctx, 'device-to-gateway', 3, reading, TOPIC)
    for (const topic of ['devices/tiny/other', 'devices/tiny/sealed/', '', 'Devices/tiny/sealed']) {
      expect(open(ctx, 'device-to-gateway', sealed, topic, MAX)).toEqual({ failure: 'bad_tag' })
    }
  })

  it('fails on every truncation', () => {
    const sealed = seal(ctx, 'device-to-gateway', 3, reading, TOPIC)
    for (let length = 0; length < sealed.length; length++) {
      expect(
        open(ctx, 'device-to-gateway', sealed.subarray(0, length), TOPIC, MAX),
        `length ${length}`,
      ).toEqual({
        failure: 'malformed',
      })
    }
  })

  it('fails on oversize input before parsing', () => {
    const sealed = seal(ctx, 'device-to-gateway', 3, reading, TOPIC)
    expect(open(ctx, 'device-to-gateway', sealed, TOPIC, sealed.length - 1)).toEqual({ failure: 'oversize' })
    expect(readHeader(sealed, sealed.length - 1)).toBe('oversize')
    expect(open(ctx, 'device-to-gateway', sealed, TOPIC, sealed.length)).toEqual({
      plaintext: reading,
      seq: 3,
    })
  })
})

describe('Encrypt0 framing', () => {
  const ctx = deviceContext(Alg.AES_CCM_16_64_128)
  const sealed = seal(ctx, 'device-to-gateway', 0x1234, reading, TOPIC)
  /** The ciphertext item, with its byte string head. */
  const ciphertext = sealed.subarray(10)
  const kid = bstr(hex('01'))
  const piv = bstr(hex('1234'))
  const frame = (...parts: Buffer[]) => Buffer.concat(parts)

  it('is rebuilt exactly by the hand-built frame', () => {
    const rebuilt = frame(hex('8340a2'), hex('04'), kid, hex('06'), piv, ciphertext)
    expect(rebuilt).toEqual(sealed)
  })

  it.each([
    ['trailing byte', frame(sealed, hex('00'))],
    ['COSE_Encrypt0 tag 16', frame(hex('d0'), sealed)],
    ['non-minimal array length', frame(hex('980340a2'), hex('04'), kid, hex('06'), piv, ciphertext)],
    ['non-minimal kid length', frame(hex('8340a2'), hex('04'), hex('580101'), hex('06'), piv, ciphertext)],
    ['non-minimal map key', frame(hex('8340a2'), hex('1804'), kid, hex('06'), piv, ciphertext)],
    ['duplicate kid', frame(hex('8340a3'), hex('04'), kid, hex('04'), kid, hex('06'), piv, ciphertext)],
    ['keys out of order', frame(hex('8340a2'), hex('06'), piv, hex('04'), kid, ciphertext)],
    ['indefinite-length map', frame(hex('8340bf'), hex('04'), kid, hex('06'), piv, hex('ff'), ciphertext)],
    [
      'indefinite-length ciphertext',
      frame(hex('8340a2'), hex('04'), kid, hex('06'), piv, hex('5f'), ciphertext, hex('ff')),
    ],
    ['non-empty protected header', frame(hex('8341a0a2'), hex('04'), kid, hex('06'), piv, ciphertext)],
    ['protected header as a map', frame(hex('83a0a2'), hex('04'), kid, hex('06'), piv, ciphertext)],
    ['alg in the unprotected header', frame(hex('8340a3010a'), hex('04'), kid, hex('06'), piv, ciphertext)],
    ['missing Partial IV', frame(hex('8340a1'), hex('04'), kid, ciphertext)],
    ['IV instead of Partial IV', frame(hex('8340a2'), hex('04'), kid, hex('05'), piv, ciphertext)],
    [
      'non-minimal Partial IV',
      frame(hex('8340a2'), hex('04'), kid, hex('06'), bstr(hex('001234')), ciphertext),
    ],
    [
      '6-byte Partial IV',
      frame(hex('8340a2'), hex('04'), kid, hex('06'), bstr(hex('010000000000')), ciphertext),
    ],
    ['empty kid', frame(hex('8340a2'), hex('04'), bstr(Buffer.alloc(0)), hex('06'), piv, ciphertext)],
    ['7-byte kid', frame(hex('8340a2'), hex('04'), bstr(Buffer.alloc(7, 1)), hex('06'), piv, ciphertext)],
    ['kid as text', frame(hex('8340a2'), hex('04'), hex('6101'), hex('06'), piv, ciphertext)],
    ['ciphertext as text', frame(hex('8340a2'), hex('04'), kid, hex('06'), piv, head(3, 2), hex('6161'))],
    ['four elements', frame(hex('8440a2'), hex('04'), kid, hex('06'), piv, ciphertext, hex('40'))],
    ['a map at the top', frame(hex('a10101'))],
  ])('refuses a %s as malformed', (_name, bytes) => {
    expect(open(ctx, 'device-to-gateway', bytes, TOPIC, MAX)).toEqual({ failure: 'malformed' })
  })

  it('refuses a ciphertext shorter than the tag as bad_tag (the frame is well-formed)', () => {
    const short = frame(hex('8340a2'), hex('04'), kid, hex('06'), piv, bstr(hex('01020304')))
    expect(open(ctx, 'device-to-gateway', short, TOPIC, MAX)).toEqual({ failure: 'bad_tag' })
  })

  it('reads the header without a key', () => {
    expect(readHeader(sealed, MAX)).toEqual({ kid: hex('01'), seq: 0x1234 })
    expect(readHeader(frame(sealed, hex('00')), MAX)).toBe('malformed')
  })
})

describe('Encrypt0 size', () => {
  it('adds at most 20 bytes to a 64-byte plaintext (AES-CCM-16-64-128, 1-byte kid, seq < 65536)', () => {
    const ctx = deviceContext(Alg.AES_CCM_16_64_128)
    expect(reading.length).toBe(64)
    const overhead = (seq: number) =>
      seal(ctx, 'device-to-gateway', seq, reading, TOPIC).length - reading.length
    expect(overhead(0)).toBe(19)
    expect(overhead(255)).toBe(19)
    expect(overhead(256)).toBe(20)
    expect(overhead(65535)).toBe(20)
    expect(Math.max(...[0, 1, 23, 24, 255, 256, 4660, 65535].map(overhead))).toBeLessThanOrEqual(20)
  })
})

describe('seal arguments', () => {
  const ctx = deviceContext(Alg.AES_CCM_16_64_128)
  it.each([-1, 2 ** 40, 0.5])('refuses sequence number %s', (seq) => {
    expect(codeOf(() => seal(ctx, 'device-to-gateway', seq, reading, TOPIC))).toBe('CRYPTO_ERR_BAD_SEQ')
  })

  it('refuses a CCM plaintext over 65535 bytes', () => {
    expect(codeOf(() => seal(ctx, 'device-to-gateway', 1, Buffer.alloc(65536), TOPIC))).toBe(
      'CRYPTO_ERR_BAD_INPUT',
    )
    const gcm = deriveContext({ kid: hex('01'), masterSecret: Buffer.alloc(16), aead: Alg.A128GCM })
    const big = Buffer.alloc(65536, 3)
    expect(
      open(gcm, 'device-to-gateway', seal(gcm, 'device-to-gateway', 1, big, TOPIC), TOPIC, 70_000),
    ).toEqual({
      plaintext: big,
      seq: 1,
    })
  })
})
