import type { webcrypto } from 'node:crypto'
import { Chacha20Poly1305 } from '@hpke/chacha20poly1305'
import { CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/core'
import { type CborMap, decodeCbor, encodeCbor } from './cbor.js'
import { CryptoError } from './errors.js'
import {
  HPKE_ENC_LENGTH,
  HPKE_INFO,
  HPKE_KEY_LENGTH,
  HpkeHeaderLabel,
  type HpkeSealRecipient,
  hpkeAad,
  MAX_HPKE_KID_LENGTH,
} from './hpke-format.js'
import type { OpenFailure } from './types.js'

/**
 * Public-key sealing for "many untrusted publishers, few trusted subscribers":
 * RFC 9180 base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305
 * (hpke-js; the KEM uses Node's WebCrypto X25519). Wire format, untagged:
 *
 *   [h'', {4: recipient kid, -4: enc}, ciphertext]
 *
 * with HPKE info "edge-gateway hpke v1" and aad CBOR [1, "hpke", topic].
 * See docs/wire-format.md, "HPKE sealing". There is no sequence number: the
 * format gives confidentiality and integrity to one recipient, not replay
 * protection or sender authentication.
 */

export {
  HPKE_ENC_LENGTH,
  HPKE_INFO,
  HPKE_KEY_LENGTH,
  HpkeHeaderLabel,
  type HpkeSealRecipient,
  hpkeAad,
  MAX_HPKE_KID_LENGTH,
} from './hpke-format.js'

const TAG_LENGTH = 16

/** The one suite this module uses; exported for the RFC 9180 test vector. */
export const hpkeSuite = new CipherSuite({
  kem: new DhkemX25519HkdfSha256(),
  kdf: new HkdfSha256(),
  aead: new Chacha20Poly1305(),
})

export interface HpkeKeyPair {
  publicKey: Buffer
  privateKey: Buffer
}

export interface HpkeOpenRecipient {
  kid: Buffer
  privateKey: Buffer
}

/** A fresh X25519 key pair as raw 32-byte keys. */
export async function generateHpkeKeyPair(): Promise<HpkeKeyPair> {
  return exportPair(await hpkeSuite.kem.generateKeyPair())
}

/** RFC 9180 DeriveKeyPair: the same key pair for the same input keying material (fixtures, test vectors). */
export async function deriveHpkeKeyPair(ikm: Buffer): Promise<HpkeKeyPair> {
  if (ikm.length < HPKE_KEY_LENGTH) {
    throw new CryptoError('CRYPTO_ERR_BAD_KEY', `Expected at least 32 bytes of IKM, got ${ikm.length}`)
  }
  return exportPair(await hpkeSuite.kem.deriveKeyPair(ikm))
}

/** Seal `plaintext` to `recipient` for `topic`, with a fresh ephemeral key. */
export function hpkeSeal(recipient: HpkeSealRecipient, plaintext: Buffer, topic: string): Promise<Buffer> {
  return sealWith(recipient, plaintext, topic, undefined)
}

/**
 * As `hpkeSeal`, but the ephemeral key is derived from `ephemeralIkm`: the
 * same inputs give the same bytes. For test vectors only; reusing an IKM
 * with a real recipient destroys the confidentiality of both messages.
 */
export function hpkeSealDeterministic(
  recipient: HpkeSealRecipient,
  plaintext: Buffer,
  topic: string,
  ephemeralIkm: Buffer,
): Promise<Buffer> {
  return sealWith(recipient, plaintext, topic, ephemeralIkm)
}

async function sealWith(
  recipient: HpkeSealRecipient,
  plaintext: Buffer,
  topic: string,
  ephemeralIkm: Buffer | undefined,
): Promise<Buffer> {
  checkKid(recipient.kid)
  checkKey(recipient.publicKey, 'public')
  const aad = hpkeAad(topic)
  let recipientPublicKey: webcrypto.CryptoKey
  try {
    recipientPublicKey = await hpkeSuite.kem.deserializePublicKey(recipient.publicKey)
  } catch (err) {
    throw new CryptoError('CRYPTO_ERR_BAD_KEY', 'The HPKE recipient public key is not a valid X25519 key', {
      cause: err,
    })
  }
  const ekm = ephemeralIkm ? await hpkeSuite.kem.deriveKeyPair(ephemeralIkm) : undefined
  let sender: Awaited<ReturnType<typeof hpkeSuite.createSenderContext>>
  try {
    sender = await hpkeSuite.createSenderContext({
      recipientPublicKey,
      info: HPKE_INFO,
      ...(ekm ? { ekm } : {}),
    })
  } catch (err) {
    // A low-order public key makes the shared secret all zeros; hpke-js refuses it.
    throw new CryptoError('CRYPTO_ERR_BAD_KEY', 'The HPKE recipient public key is unusable (low order)', {
      cause: err,
    })
  }
  const ciphertext = Buffer.from(await sender.seal(plaintext, aad))
  const unprotected: CborMap = new Map<number, Buffer>([
    [HpkeHeaderLabel.kid, recipient.kid],
    [HpkeHeaderLabel.enc, Buffer.from(sender.enc)],
  ])
  return encodeCbor([Buffer.alloc(0), unprotected, ciphertext])
}

interface HpkeEnvelope {
  kid: Buffer
  enc: Buffer
  ciphertext: Buffer
}

/** Parse the frame strictly (size first); any deviation is 'malformed'. Never throws. */
function decodeHpke(bytes: Buffer, maxBytes: number): HpkeEnvelope | 'malformed' | 'oversize' {
  if (!Buffer.isBuffer(bytes)) return 'malformed'
  if (bytes.length > maxBytes) return 'oversize'
  let value: unknown
  try {
    value = decodeCbor(bytes, { maxBytes, maxDepth: 2 })
  } catch (err) {
    if (err instanceof CryptoError && err.code === 'CRYPTO_ERR_CBOR_OVERSIZE') return 'oversize'
    return 'malformed'
  }
  if (!Array.isArray(value) || value.length !== 3) return 'malformed'
  const [protectedHeader, unprotected, ciphertext] = value
  if (!Buffer.isBuffer(protectedHeader) || protectedHeader.length !== 0) return 'malformed'
  if (!(unprotected instanceof Map) || unprotected.size !== 2) return 'malformed'
  const kid = unprotected.get(HpkeHeaderLabel.kid)
  const enc = unprotected.get(HpkeHeaderLabel.enc)
  if (!Buffer.isBuffer(kid) || kid.length < 1 || kid.length > MAX_HPKE_KID_LENGTH) return 'malformed'
  if (!Buffer.isBuffer(enc) || enc.length !== HPKE_ENC_LENGTH) return 'malformed'
  if (!Buffer.isBuffer(ciphertext) || ciphertext.length < TAG_LENGTH) return 'malformed'
  return { kid, enc, ciphertext }
}

/** The recipient kid of a sealed payload, to choose the private key; nothing is verified. Never throws. */
export function hpkeRecipientKid(bytes: Buffer, maxBytes: number): Buffer | OpenFailure {
  const envelope = decodeHpke(bytes, maxBytes)
  return typeof envelope === 'string' ? envelope : envelope.kid
}

/**
 * Open a payload sealed to `recipient` for `topic`. Bad input never throws:
 * it is 'oversize' (checked before decoding), 'malformed', 'unknown_kid'
 * (sealed to another recipient) or 'bad_tag' (tampered, wrong key, other topic).
 * Throws CRYPTO_ERR_BAD_KEY / CRYPTO_ERR_BAD_INPUT only for a bad private key or limit.
 */
export async function hpkeOpen(
  recipient: HpkeOpenRecipient,
  bytes: Buffer,
  topic: string,
  maxBytes: number,
): Promise<{ plaintext: Buffer } | { failure: OpenFailure }> {
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) {
    throw new CryptoError(
      'CRYPTO_ERR_BAD_INPUT',
      `Expected \`maxBytes\` to be a non-negative integer, got ${maxBytes}`,
    )
  }
  checkKid(recipient.kid)
  checkKey(recipient.privateKey, 'private')
  const envelope = decodeHpke(bytes, maxBytes)
  if (typeof envelope === 'string') return { failure: envelope }
  if (!envelope.kid.equals(recipient.kid)) return { failure: 'unknown_kid' }
  let recipientKey: webcrypto.CryptoKey
  try {
    recipientKey = await hpkeSuite.kem.deserializePrivateKey(recipient.privateKey)
  } catch (err) {
    throw new CryptoError('CRYPTO_ERR_BAD_KEY', 'The HPKE private key is not a valid X25519 key', {
      cause: err,
    })
  }
  try {
    const plaintext = await hpkeSuite.open(
      { recipientKey, enc: envelope.enc, info: HPKE_INFO },
      envelope.ciphertext,
      hpkeAad(topic),
    )
    return { plaintext: Buffer.from(plaintext) }
  } catch {
    // Decapsulation (low-order enc) or AEAD failure: either way the payload does not verify.
    return { failure: 'bad_tag' }
  }
}

async function exportPair(pair: webcrypto.CryptoKeyPair): Promise<HpkeKeyPair> {
  return {
    publicKey: Buffer.from(await hpkeSuite.kem.serializePublicKey(pair.publicKey)),
    privateKey: Buffer.from(await hpkeSuite.kem.serializePrivateKey(pair.privateKey)),
  }
}

function checkKid(kid: Buffer): void {
  if (!Buffer.isBuffer(kid) || kid.length < 1 || kid.length > MAX_HPKE_KID_LENGTH) {
    throw new CryptoError(
      'CRYPTO_ERR_BAD_KEY',
      `Expected an HPKE recipient kid of 1 to ${MAX_HPKE_KID_LENGTH} bytes, got ${describeLength(kid)}`,
    )
  }
}

function checkKey(key: Buffer, kind: 'public' | 'private'): void {
  if (!Buffer.isBuffer(key) || key.length !== HPKE_KEY_LENGTH) {
    throw new CryptoError(
      'CRYPTO_ERR_BAD_KEY',
      `Expected a raw 32-byte X25519 ${kind} key, got ${describeLength(key)}`,
    )
  }
}

function describeLength(value: unknown): string {
  return Buffer.isBuffer(value) ? `${value.length} bytes` : typeof value
}
