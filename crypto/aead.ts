import { createCipheriv, createDecipheriv } from 'node:crypto'
import { aeadParams } from './algorithms.js'
import { CryptoError } from './errors.js'
import type { AeadAlg } from './types.js'

/** AEAD encryption with Node's ciphers; returns ciphertext || tag, as COSE carries it. */
export function aeadEncrypt(
  alg: AeadAlg,
  key: Buffer,
  nonce: Buffer,
  aad: Buffer,
  plaintext: Buffer,
): Buffer {
  const params = aeadParams(alg)
  checkSizes(alg, key, nonce)
  if (plaintext.length > params.maxPlaintext) {
    throw new CryptoError(
      'CRYPTO_ERR_BAD_INPUT',
      `Expected at most ${params.maxPlaintext} bytes of plaintext for ${params.name}, got ${plaintext.length}`,
    )
  }
  // The CCM overload types all four: each cipher takes authTagLength and setAAD's plaintextLength.
  const cipher = createCipheriv(params.cipher as 'aes-128-ccm', key, nonce, {
    authTagLength: params.tagLength,
  })
  cipher.setAAD(aad, { plaintextLength: plaintext.length })
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()])
  return Buffer.concat([body, cipher.getAuthTag()])
}

/**
 * The plaintext, or undefined when the tag does not verify (or the input is
 * too short to hold one). Never throws for received bytes.
 */
export function aeadDecrypt(
  alg: AeadAlg,
  key: Buffer,
  nonce: Buffer,
  aad: Buffer,
  ciphertextAndTag: Buffer,
): Buffer | undefined {
  const params = aeadParams(alg)
  checkSizes(alg, key, nonce)
  const bodyLength = ciphertextAndTag.length - params.tagLength
  if (bodyLength < 0 || bodyLength > params.maxPlaintext) return undefined
  try {
    // The explicit authTagLength stops Node from accepting a shortened GCM tag.
    const decipher = createDecipheriv(params.cipher as 'aes-128-ccm', key, nonce, {
      authTagLength: params.tagLength,
    })
    decipher.setAuthTag(ciphertextAndTag.subarray(bodyLength))
    decipher.setAAD(aad, { plaintextLength: bodyLength })
    const plaintext = decipher.update(ciphertextAndTag.subarray(0, bodyLength))
    decipher.final()
    return plaintext
  } catch {
    return undefined
  }
}

function checkSizes(alg: AeadAlg, key: Buffer, nonce: Buffer): void {
  const { keyLength, nonceLength, name } = aeadParams(alg)
  if (key.length !== keyLength || nonce.length !== nonceLength) {
    throw new CryptoError(
      'CRYPTO_ERR_BAD_KEY',
      `Expected a ${keyLength}-byte key and a ${nonceLength}-byte nonce for ${name}, got ${key.length} and ${nonce.length}`,
    )
  }
}
