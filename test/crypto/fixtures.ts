import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { deriveContext } from '../../crypto/context.js'
import { type AeadAlg, Alg, type DerivedContext, type MacAlg } from '../../crypto/types.js'

/** Shared inputs for the crypto tests. The vectors file is the single source of fixed bytes. */
export interface ContextInput {
  masterSecret: string
  masterSalt?: string
  kid: string
  aead: AeadAlg
  mac: MacAlg
}

export interface Vectors {
  rfc8613: {
    c1_1: Record<string, string | number>
    c4: Record<string, string | number>
  }
  contexts: Record<
    string,
    { input: ContextInput; info: Record<string, string>; derived: Record<string, string> }
  >
  encrypt0: Array<{
    context: string
    alg: number
    direction: 'device-to-gateway' | 'gateway-to-device'
    seq: number
    topic: string
    plaintext: string
    partialIv: string
    nonce: string
    externalAad: string
    encStructure: string
    sealed: string
  }>
  mac0: Array<{
    context: string
    alg: number
    direction: 'device-to-gateway' | 'gateway-to-device'
    seq: number
    topic: string
    payload: string
    partialIv: string
    externalAad: string
    macStructure: string
    protected: string
  }>
  sign1: Array<{
    alg: -8 | -7
    key: { kty: 'OKP' | 'EC'; crv: string; d: string; x: string; y?: string }
    kid: string
    payload: string
    externalAad: string
    signed: string
  }>
  token: Array<{
    context: string
    clientId: string
    timestamp: number
    nonce: string
    externalAad: string
    token: string
  }>
  keyUpdate: {
    context: string
    seq: number
    topic: string
    kid: string
    masterSecret: string
    until: number
    plaintext: string
    sealed: string
  }
}

export const vectors: Vectors = JSON.parse(readFileSync(new URL('./vectors.json', import.meta.url), 'utf8'))

export const hex = (value: string): Buffer => Buffer.from(value, 'hex')

export function contextFromInput(input: ContextInput): DerivedContext {
  return deriveContext({
    kid: hex(input.kid),
    masterSecret: hex(input.masterSecret),
    ...(input.masterSalt !== undefined && { masterSalt: hex(input.masterSalt) }),
    aead: input.aead,
    mac: input.mac,
  })
}

export function vectorContext(name: string): DerivedContext {
  const entry = vectors.contexts[name]
  if (!entry) throw new Error(`no context ${name} in vectors.json`)
  return contextFromInput(entry.input)
}

/** A device context per AEAD algorithm, with a 1-byte kid, for round-trip tests. */
export function deviceContext(
  aead: AeadAlg,
  kid = 0x01,
  mac: MacAlg = Alg.HMAC_256_64,
  secretByte = 0x11,
): DerivedContext {
  return deriveContext({ kid: Buffer.from([kid]), masterSecret: Buffer.alloc(16, secretByte), aead, mac })
}

export const AEAD_ALGS: readonly AeadAlg[] = [
  Alg.AES_CCM_16_64_128,
  Alg.A128GCM,
  Alg.A256GCM,
  Alg.CHACHA20_POLY1305,
]
export const MAC_ALGS: readonly MacAlg[] = [Alg.HMAC_256_64, Alg.HMAC_256_256]

/** Key pairs from the vectors' public test keys (RFC 8032 §7.1 TEST 1, RFC 6979 A.2.5). */
export function signingKeys(alg: -8 | -7): { privateKey: KeyObject; publicKey: KeyObject } {
  const entry = vectors.sign1.find((v) => v.alg === alg)!
  const b64 = (h: string) => hex(h).toString('base64url')
  const jwk = {
    kty: entry.key.kty,
    crv: entry.key.crv,
    x: b64(entry.key.x),
    ...(entry.key.y !== undefined && { y: b64(entry.key.y) }),
  }
  return {
    privateKey: createPrivateKey({ key: { ...jwk, d: b64(entry.key.d) }, format: 'jwk' }),
    publicKey: createPublicKey({ key: jwk, format: 'jwk' }),
  }
}

/** XOR one byte at `index`: a tampered copy. */
export function flip(bytes: Buffer, index: number, mask: number): Buffer {
  const copy = Buffer.from(bytes)
  copy[index]! ^= mask
  return copy
}

/** Hand-built CBOR, so malformed variants do not depend on the encoder under test. */
export function head(major: number, n: number): Buffer {
  if (n < 24) return Buffer.from([(major << 5) | n])
  if (n < 256) return Buffer.from([(major << 5) | 24, n])
  return Buffer.from([(major << 5) | 25, n >> 8, n & 0xff])
}

export function bstr(bytes: Buffer): Buffer {
  return Buffer.concat([head(2, bytes.length), bytes])
}
