import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const DIST_CRYPTO = new URL('../../dist/crypto/', import.meta.url)

/** Whether this build has sealed payloads (`dist/crypto/encrypt0.js`). */
export function sealingAvailable() {
  return existsSync(fileURLToPath(new URL('encrypt0.js', DIST_CRYPTO)))
}

/**
 * A device-side sealer as a real device would run it: COSE_Encrypt0 with
 * AES-CCM-16-64-128 (the gateway's default for `payloadKey`), the topic in the
 * external AAD, sequence numbers from 1.
 */
export async function createSealer({ kidHex, secretHex, topic }) {
  const { seal } = await import(new URL('encrypt0.js', DIST_CRYPTO).href)
  const { deriveContext } = await import(new URL('context.js', DIST_CRYPTO).href)
  const { Alg } = await import(new URL('types.js', DIST_CRYPTO).href)
  const ctx = deriveContext({
    kid: Buffer.from(kidHex, 'hex'),
    masterSecret: Buffer.from(secretHex, 'hex'),
    aead: Alg.AES_CCM_16_64_128,
  })
  return (plaintext, seq) => seal(ctx, 'device-to-gateway', seq, plaintext, topic)
}
