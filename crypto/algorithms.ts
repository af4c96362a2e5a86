import { CryptoError } from './errors.js'
import { type AeadAlg, Alg, type MacAlg, type SignAlg } from './types.js'

/** What an AEAD algorithm needs from Node and from the nonce construction (RFC 9053 §4, RFC 8439). */
export interface AeadParams {
  name: string
  cipher: 'aes-128-ccm' | 'aes-128-gcm' | 'aes-256-gcm' | 'chacha20-poly1305'
  keyLength: number
  nonceLength: number
  tagLength: number
  /** CCM with a 13-byte nonce has a 2-byte length field: at most 65535 bytes of plaintext. */
  maxPlaintext: number
}

export const AEAD_PARAMS: Readonly<Record<AeadAlg, AeadParams>> = Object.freeze({
  [Alg.AES_CCM_16_64_128]: {
    name: 'AES-CCM-16-64-128',
    cipher: 'aes-128-ccm',
    keyLength: 16,
    nonceLength: 13,
    tagLength: 8,
    maxPlaintext: 0xffff,
  },
  [Alg.A128GCM]: {
    name: 'A128GCM',
    cipher: 'aes-128-gcm',
    keyLength: 16,
    nonceLength: 12,
    tagLength: 16,
    maxPlaintext: 2 ** 32,
  },
  [Alg.A256GCM]: {
    name: 'A256GCM',
    cipher: 'aes-256-gcm',
    keyLength: 32,
    nonceLength: 12,
    tagLength: 16,
    maxPlaintext: 2 ** 32,
  },
  [Alg.CHACHA20_POLY1305]: {
    name: 'ChaCha20/Poly1305',
    cipher: 'chacha20-poly1305',
    keyLength: 32,
    nonceLength: 12,
    tagLength: 16,
    maxPlaintext: 2 ** 32,
  },
})

/** HMAC-SHA256 output truncated to this many bytes (RFC 9053 §3.1). */
export const MAC_TAG_LENGTH: Readonly<Record<MacAlg, number>> = Object.freeze({
  [Alg.HMAC_256_64]: 8,
  [Alg.HMAC_256_256]: 32,
})

/** HMAC keys are as long as the SHA-256 output. */
export const MAC_KEY_LENGTH = 32

export function isAeadAlg(value: unknown): value is AeadAlg {
  return (
    value === Alg.AES_CCM_16_64_128 ||
    value === Alg.A128GCM ||
    value === Alg.A256GCM ||
    value === Alg.CHACHA20_POLY1305
  )
}

export function isMacAlg(value: unknown): value is MacAlg {
  return value === Alg.HMAC_256_64 || value === Alg.HMAC_256_256
}

export function isSignAlg(value: unknown): value is SignAlg {
  return value === Alg.EDDSA || value === Alg.ES256
}

export function aeadParams(alg: AeadAlg): AeadParams {
  if (!isAeadAlg(alg)) {
    throw new CryptoError(
      'CRYPTO_ERR_BAD_ALG',
      `Expected an AEAD algorithm (10, 1, 3 or 24), got ${String(alg)}`,
    )
  }
  return AEAD_PARAMS[alg]
}
