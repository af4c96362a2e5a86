import cose from 'cose-js'
import { describe, expect, it } from 'vitest'
import { open, seal } from '../../crypto/encrypt0.js'
import { macOpen, macProtect } from '../../crypto/mac0.js'
import { sign1, verify1 } from '../../crypto/sign1.js'
import { checkToken, makeToken } from '../../crypto/token.js'
import { type AeadAlg, Alg, type DerivedContext, type Direction, type MacAlg } from '../../crypto/types.js'
import { deviceContext, hex, signingKeys } from './fixtures.js'

/*
 * Cross-check against cose-js 0.9 (github.com/erdtman/cose-js), an independent COSE implementation that
 * uses its own CBOR library (node-cbor) and builds its own Enc_structure / MAC_structure / Sig_structure.
 *
 * What is cross-checked, in both directions (cose-js reads ours, we read cose-js's):
 * - Encrypt0 with AES-CCM-16-64-128, A128GCM and A256GCM: the Enc_structure ("Encrypt0", h'', external AAD),
 *   the AEAD itself, the ciphertext || tag layout, and the Partial IV half of the nonce (cose-js XORs the
 *   Partial IV, right-aligned, into a "context IV" we hand it).
 * - Mac0 with HMAC 256/64 and HMAC 256/256: the MAC_structure, the truncation, the tag placement.
 * - Sign1 with ES256: the protected header bytes, the Sig_structure and the raw r || s signature; here the
 *   objects are byte-compatible as they are (untagged, alg in the protected header), no adapter at all.
 * - The CONNECT token, which is a Mac0 with HMAC 256/64 under the token key.
 *
 * What is NOT cross-checked here:
 * - Key derivation: cose-js has no OSCORE derivation, so it is given our derived keys. The derivation is
 *   checked against RFC 8613 Appendix C.1.1 in context.test.ts and vectors.test.ts instead.
 * - The Sender ID half of the nonce: the context IV given to cose-js (common IV XOR [S, padded Sender ID,
 *   five zero bytes]) is computed below by hand, following RFC 8613 §5.2, not by our nonceFor.
 * - ChaCha20/Poly1305 and Ed25519: cose-js supports neither; they are covered by vectors.json only.
 * - Our strict CBOR profile and header rules: cose-js is lenient.
 *
 * The adapter: our symmetric objects carry no alg (it belongs to the device context, as in OSCORE), while
 * cose-js needs one. It may sit in the unprotected header, where it is not authenticated and leaves the
 * Enc/MAC_structure unchanged (protected stays h''). So the adapter inserts or removes exactly the bytes
 * `01 <alg>` as the first unprotected entry; everything else is passed through untouched, untagged.
 * The external AAD given to cose-js is built by hand from CBOR heads, not by our encoder.
 */

const TOPIC = 'devices/tiny/sealed'
const SEQ = 0x1234 // cose-js draws a 2-byte Partial IV; 0x1234 is 2 bytes in our minimal encoding too.
const PIV = hex('1234')
const payload = Buffer.from('{"id":"tiny","t":1732350000,"temp":21.5,"hum":48.25,"batt":3.01}')
const COSE_ALG_NAME: Record<number, string> = {
  10: 'AES-CCM-16-64-128',
  1: 'A128GCM',
  3: 'A256GCM',
  4: 'SHA-256_64',
  5: 'SHA-256',
}

/** CBOR [1, alg, h'01', h'1234', topic], built from heads by hand (all items here are short). */
function handExternalAad(alg: number, topic: string): Buffer {
  const text = Buffer.from(topic, 'utf8')
  expect(alg).toBeLessThan(24)
  expect(text.length).toBeLessThan(24)
  return Buffer.concat([
    hex('85'),
    hex('01'),
    Buffer.from([alg]),
    hex('4101'),
    hex('421234'),
    Buffer.from([0x60 + text.length]),
    text,
  ])
}

/** RFC 8613 §5.2 without the Partial IV: common IV XOR [S, Sender ID left-padded to nonce length - 6, 0 x 5]. */
function contextIv(ctx: DerivedContext, direction: Direction): Buffer {
  const id = direction === 'device-to-gateway' ? ctx.kid : Buffer.alloc(0)
  const block = Buffer.alloc(ctx.commonIv.length)
  block[0] = id.length
  id.copy(block, block.length - 5 - id.length)
  return Buffer.from(block.map((byte, i) => byte ^ ctx.commonIv[i]!))
}

/** Ours to cose-js: [h'', {4: kid, ...}, ...] becomes [h'', {1: alg, 4: kid, ...}, ...]. */
function addAlg(ours: Buffer, alg: number): Buffer {
  const mapHead = ours[2]!
  expect(ours.subarray(1, 2)).toEqual(hex('40'))
  expect(mapHead >> 5).toBe(5)
  return Buffer.concat([ours.subarray(0, 2), Buffer.from([mapHead + 1, 0x01, alg]), ours.subarray(3)])
}

/** cose-js to ours: the reverse; fails the test if cose-js put anything else first. */
function removeAlg(theirs: Buffer, alg: number): Buffer {
  const mapHead = theirs[2]!
  expect(theirs.subarray(3, 5)).toEqual(Buffer.from([0x01, alg]))
  return Buffer.concat([theirs.subarray(0, 2), Buffer.from([mapHead - 1]), theirs.subarray(5)])
}

describe.each([[Alg.AES_CCM_16_64_128], [Alg.A128GCM], [Alg.A256GCM]] as Array<[AeadAlg]>)(
  'cose-js and Encrypt0 with alg %i',
  (aead) => {
    const ctx = deviceContext(aead)

    it.each(['device-to-gateway', 'gateway-to-device'] as Direction[])(
      'cose-js opens ours (%s)',
      async (direction) => {
        const ours = seal(ctx, direction, SEQ, payload, TOPIC)
        const plaintext = await cose.encrypt.read(addAlg(ours, aead), ctx.aeadKey[direction], {
          externalAAD: handExternalAad(aead, TOPIC),
          contextIv: contextIv(ctx, direction),
          defaultType: 16,
        })
        expect(plaintext).toEqual(payload)
      },
    )

    it.each(['device-to-gateway', 'gateway-to-device'] as Direction[])(
      'we open cose-js output (%s)',
      async (direction) => {
        const theirs = await cose.encrypt.create(
          { p: {}, u: { alg: COSE_ALG_NAME[aead], kid: '\x01' } },
          payload,
          { key: ctx.aeadKey[direction] },
          {
            externalAAD: handExternalAad(aead, TOPIC),
            contextIv: contextIv(ctx, direction),
            randomSource: (bytes) => {
              expect(bytes).toBe(2)
              return Buffer.from(PIV)
            },
            encodep: 'empty',
            excludetag: true,
          },
        )
        const adapted = removeAlg(theirs, aead)
        expect(open(ctx, direction, adapted, TOPIC, 1024)).toEqual({ plaintext: payload, seq: SEQ })
        // Same key, nonce and AAD: cose-js's object is byte for byte the one we make.
        expect(adapted).toEqual(seal(ctx, direction, SEQ, payload, TOPIC))
      },
    )

    it('cose-js fails to open ours under another topic', async () => {
      const ours = seal(ctx, 'device-to-gateway', SEQ, payload, TOPIC)
      await expect(
        cose.encrypt.read(addAlg(ours, aead), ctx.aeadKey['device-to-gateway'], {
          externalAAD: handExternalAad(aead, 'devices/tiny/other'),
          contextIv: contextIv(ctx, 'device-to-gateway'),
          defaultType: 16,
        }),
      ).rejects.toThrow()
    })
  },
)

describe.each([[Alg.HMAC_256_64], [Alg.HMAC_256_256]] as Array<[MacAlg]>)(
  'cose-js and Mac0 with alg %i',
  (mac) => {
    const ctx = deviceContext(Alg.AES_CCM_16_64_128, 0x01, mac)

    it.each(['device-to-gateway', 'gateway-to-device'] as Direction[])(
      'cose-js verifies ours (%s)',
      async (direction) => {
        const ours = macProtect(ctx, direction, SEQ, payload, TOPIC)
        const verified = await cose.mac.read(
          addAlg(ours, mac),
          ctx.macKey[direction],
          handExternalAad(mac, TOPIC),
        )
        expect(verified).toEqual(payload)
        const tampered = addAlg(ours, mac)
        tampered[tampered.length - 1]! ^= 1
        await expect(
          cose.mac.read(tampered, ctx.macKey[direction], handExternalAad(mac, TOPIC)),
        ).rejects.toThrow('Tag mismatch')
      },
    )

    it.each(['device-to-gateway', 'gateway-to-device'] as Direction[])(
      'we verify cose-js output (%s)',
      async (direction) => {
        const theirs = await cose.mac.create(
          { p: {}, u: { alg: COSE_ALG_NAME[mac], kid: '\x01', Partial_IV: PIV } },
          payload,
          { key: ctx.macKey[direction] },
          handExternalAad(mac, TOPIC),
          { encodep: 'empty', excludetag: true },
        )
        const adapted = removeAlg(theirs, mac)
        expect(macOpen(ctx, direction, adapted, TOPIC, 1024)).toEqual({ payload, seq: SEQ })
        expect(adapted).toEqual(macProtect(ctx, direction, SEQ, payload, TOPIC))
      },
    )
  },
)

describe('cose-js and the CONNECT token (Mac0, HMAC 256/64, token key)', () => {
  const ctx = deviceContext(Alg.AES_CCM_16_64_128)
  const now = 1_732_350_000
  const nonce = hex('0011223344556677')
  // CBOR [1, "connect", "tiny"] and [1732350000, h'0011223344556677'], by hand.
  const aad = hex('8301 67636f6e6e656374 6474696e79'.replace(/ /g, ''))
  const body = hex('82 1a67419030 480011223344556677'.replace(/ /g, ''))

  it('cose-js verifies ours', async () => {
    const ours = makeToken(ctx, 'tiny', now, nonce)
    expect(await cose.mac.read(addAlg(ours, Alg.HMAC_256_64), ctx.tokenKey, aad)).toEqual(body)
  })

  it('we accept cose-js output', async () => {
    const theirs = await cose.mac.create(
      { p: {}, u: { alg: 'SHA-256_64', kid: '\x01' } },
      body,
      { key: ctx.tokenKey },
      aad,
      { encodep: 'empty', excludetag: true },
    )
    expect(checkToken(() => ctx, removeAlg(theirs, Alg.HMAC_256_64), 'tiny', now, 120)).toEqual({
      kid: hex('01'),
      nonce,
      timestamp: now,
    })
  })
})

describe('cose-js and Sign1 with ES256 (no adapter: the forms are the same)', () => {
  const { privateKey, publicKey } = signingKeys(Alg.ES256)
  const jwk = privateKey.export({ format: 'jwk' })
  const d = Buffer.from(jwk.d!, 'base64url')
  const x = Buffer.from(jwk.x!, 'base64url')
  const y = Buffer.from(jwk.y!, 'base64url')
  const aad = Buffer.from('uplink')
  const kid = Buffer.from('op-1')

  it('cose-js verifies ours, and refuses it under another external AAD', async () => {
    const ours = sign1(privateKey, Alg.ES256, kid, payload, aad)
    expect(await cose.sign.verify(ours, { key: { x, y }, externalAAD: aad }, { defaultType: 18 })).toEqual(
      payload,
    )
    await expect(
      cose.sign.verify(ours, { key: { x, y }, externalAAD: Buffer.from('other') }, { defaultType: 18 }),
    ).rejects.toThrow('Signature missmatch')
  })

  it('we verify cose-js output, which matches ours up to the signature', async () => {
    const theirs = await cose.sign.create(
      { p: { alg: 'ES256' }, u: { kid: 'op-1' } },
      payload,
      { key: { d }, externalAAD: aad },
      { excludetag: true },
    )
    expect(verify1(() => publicKey, theirs, aad, 1024)).toEqual({ payload, kid, alg: Alg.ES256 })
    const ours = sign1(privateKey, Alg.ES256, kid, payload, aad)
    expect(theirs.length).toBe(ours.length)
    expect(theirs.subarray(0, theirs.length - 64)).toEqual(ours.subarray(0, ours.length - 64))
  })
})
