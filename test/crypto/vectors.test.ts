import { createPublicKey } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { aeadDecrypt, aeadEncrypt } from '../../crypto/aead.js'
import { kdfInfo, nonceFor } from '../../crypto/context.js'
import { open, seal } from '../../crypto/encrypt0.js'
import { macOpen, macProtect } from '../../crypto/mac0.js'
import { encodePartialIv } from '../../crypto/partial-iv.js'
import { sign1, verify1 } from '../../crypto/sign1.js'
import { EMPTY_PROTECTED, encStructure, externalAad, macStructure } from '../../crypto/structures.js'
import { checkToken, makeToken, tokenAad } from '../../crypto/token.js'
import { Alg } from '../../crypto/types.js'
import { hex, signingKeys, vectorContext, vectors } from './fixtures.js'

/** Every expected byte comes from test/crypto/vectors.json; nothing here is recomputed to compare with itself. */
describe('vectors.json', () => {
  it('RFC 8613 C.4: AES-CCM-16-64-128 with the RFC key, nonce and Enc_structure', () => {
    const c4 = vectors.rfc8613.c4
    const aad = encStructure(EMPTY_PROTECTED, hex(c4.externalAad as string))
    expect(aad.toString('hex')).toBe(c4.encStructure)
    const ciphertext = aeadEncrypt(
      Alg.AES_CCM_16_64_128,
      hex(c4.key as string),
      hex(c4.nonce as string),
      aad,
      hex(c4.plaintext as string),
    )
    expect(ciphertext.toString('hex')).toBe(c4.ciphertext)
    expect(
      aeadDecrypt(Alg.AES_CCM_16_64_128, hex(c4.key as string), hex(c4.nonce as string), aad, ciphertext),
    ).toEqual(hex(c4.plaintext as string))
    expect(encodePartialIv(c4.seq as number)).toEqual(hex('14'))
  })

  describe.each(Object.entries(vectors.contexts))('context %s', (name, entry) => {
    const ctx = vectorContext(name)
    const kid = hex(entry.input.kid)

    it('has the expected HKDF info structures', () => {
      const aeadKeyLength = ctx.aeadKey['device-to-gateway'].length
      expect({
        aeadKeyDeviceToGateway: kdfInfo(kid, entry.input.aead, 'Key', aeadKeyLength).toString('hex'),
        aeadKeyGatewayToDevice: kdfInfo(Buffer.alloc(0), entry.input.aead, 'Key', aeadKeyLength).toString(
          'hex',
        ),
        commonIv: kdfInfo(Buffer.alloc(0), entry.input.aead, 'IV', ctx.commonIv.length).toString('hex'),
        macKeyDeviceToGateway: kdfInfo(kid, entry.input.mac, 'Key', 32).toString('hex'),
        macKeyGatewayToDevice: kdfInfo(Buffer.alloc(0), entry.input.mac, 'Key', 32).toString('hex'),
        tokenKey: kdfInfo(kid, Alg.HMAC_256_64, 'Token', 32).toString('hex'),
      }).toEqual(entry.info)
    })

    it('derives the expected keys and common IV', () => {
      expect({
        commonIv: ctx.commonIv.toString('hex'),
        aeadKeyDeviceToGateway: ctx.aeadKey['device-to-gateway'].toString('hex'),
        aeadKeyGatewayToDevice: ctx.aeadKey['gateway-to-device'].toString('hex'),
        macKeyDeviceToGateway: ctx.macKey['device-to-gateway'].toString('hex'),
        macKeyGatewayToDevice: ctx.macKey['gateway-to-device'].toString('hex'),
        tokenKey: ctx.tokenKey.toString('hex'),
      }).toEqual(entry.derived)
    })
  })

  it('covers every AEAD and MAC algorithm', () => {
    expect(new Set(vectors.encrypt0.map((v) => v.alg))).toEqual(new Set([10, 1, 3, 24]))
    expect(new Set(vectors.mac0.map((v) => v.alg))).toEqual(new Set([4, 5]))
  })

  it.each(vectors.encrypt0.map((v) => [`${v.context} ${v.direction} seq ${v.seq}`, v] as const))(
    'Encrypt0 %s',
    (_name, v) => {
      const ctx = vectorContext(v.context)
      expect(ctx.aead).toBe(v.alg)
      const partialIv = encodePartialIv(v.seq)
      expect(partialIv.toString('hex')).toBe(v.partialIv)
      expect(nonceFor(ctx, v.direction, v.seq).toString('hex')).toBe(v.nonce)
      const aad = externalAad(ctx.aead, ctx.kid, partialIv, v.topic)
      expect(aad.toString('hex')).toBe(v.externalAad)
      expect(encStructure(EMPTY_PROTECTED, aad).toString('hex')).toBe(v.encStructure)
      expect(seal(ctx, v.direction, v.seq, hex(v.plaintext), v.topic).toString('hex')).toBe(v.sealed)
      expect(open(ctx, v.direction, hex(v.sealed), v.topic, 1024)).toEqual({
        plaintext: hex(v.plaintext),
        seq: v.seq,
      })
    },
  )

  it.each(vectors.mac0.map((v) => [`${v.context} ${v.direction} seq ${v.seq}`, v] as const))(
    'Mac0 %s',
    (_name, v) => {
      const ctx = vectorContext(v.context)
      expect(ctx.mac).toBe(v.alg)
      const partialIv = encodePartialIv(v.seq)
      expect(partialIv.toString('hex')).toBe(v.partialIv)
      const aad = externalAad(ctx.mac, ctx.kid, partialIv, v.topic)
      expect(aad.toString('hex')).toBe(v.externalAad)
      expect(macStructure(EMPTY_PROTECTED, aad, hex(v.payload)).toString('hex')).toBe(v.macStructure)
      expect(macProtect(ctx, v.direction, v.seq, hex(v.payload), v.topic).toString('hex')).toBe(v.protected)
      expect(macOpen(ctx, v.direction, hex(v.protected), v.topic, 1024)).toEqual({
        payload: hex(v.payload),
        seq: v.seq,
      })
    },
  )

  it('Sign1 Ed25519: byte for byte (Ed25519 is deterministic)', () => {
    const v = vectors.sign1.find((s) => s.alg === Alg.EDDSA)!
    const { privateKey, publicKey } = signingKeys(Alg.EDDSA)
    const raw = publicKey.export({ format: 'jwk' }).x
    expect(Buffer.from(raw!, 'base64url').toString('hex')).toBe(v.key.x)
    expect(sign1(privateKey, Alg.EDDSA, hex(v.kid), hex(v.payload), hex(v.externalAad)).toString('hex')).toBe(
      v.signed,
    )
    expect(verify1(() => publicKey, hex(v.signed), hex(v.externalAad), 1024)).toEqual({
      payload: hex(v.payload),
      kid: hex(v.kid),
      alg: Alg.EDDSA,
    })
  })

  it('Sign1 ES256: the stored signature verifies with the public key alone', () => {
    const v = vectors.sign1.find((s) => s.alg === Alg.ES256)!
    const publicKey = createPublicKey({
      key: {
        kty: 'EC',
        crv: 'P-256',
        x: hex(v.key.x).toString('base64url'),
        y: hex(v.key.y!).toString('base64url'),
      },
      format: 'jwk',
    })
    expect(verify1(() => publicKey, hex(v.signed), hex(v.externalAad), 1024)).toEqual({
      payload: hex(v.payload),
      kid: hex(v.kid),
      alg: Alg.ES256,
    })
    const fresh = sign1(
      signingKeys(Alg.ES256).privateKey,
      Alg.ES256,
      hex(v.kid),
      hex(v.payload),
      hex(v.externalAad),
    )
    // Everything but the 64-byte signature is fixed.
    expect(fresh.subarray(0, fresh.length - 64).toString('hex')).toBe(v.signed.slice(0, -128))
    expect(verify1(() => publicKey, fresh, hex(v.externalAad), 1024)).not.toHaveProperty('failure')
  })

  it.each(vectors.token.map((v) => [v.clientId, v] as const))('token for client id %s', (_name, v) => {
    const ctx = vectorContext(v.context)
    expect(tokenAad(v.clientId).toString('hex')).toBe(v.externalAad)
    expect(makeToken(ctx, v.clientId, v.timestamp, hex(v.nonce)).toString('hex')).toBe(v.token)
    expect(checkToken(() => ctx, hex(v.token), v.clientId, v.timestamp, 120)).toEqual({
      kid: ctx.kid,
      nonce: hex(v.nonce),
      timestamp: v.timestamp,
    })
  })
})
