import { decodeCbor, encodeCbor } from './cbor.js'

/**
 * A payload device's new key, sent to it by the gateway (docs/rotation.md, "A payload device's
 * key"): the plaintext of a COSE_Encrypt0 sealed under the device's current key, gateway to
 * device, bound to the LAN topic it is published on.
 *
 *   CBOR [ 1, "edge-gateway key update", kid: bstr (1 to 6), master secret: bstr (16 or 32), until: uint (ms) ]
 *
 * `until`: when the gateway stops accepting the old key. The algorithms stay the old key's.
 */
export interface KeyUpdate {
  kid: Buffer
  masterSecret: Buffer
  until: number
}

const VERSION = 1
const CONTEXT = 'edge-gateway key update'

export function encodeKeyUpdate(update: KeyUpdate): Buffer {
  return encodeCbor([VERSION, CONTEXT, update.kid, update.masterSecret, update.until])
}

/** The key update in `bytes` (an opened plaintext); undefined when it is not one. Never throws. */
export function decodeKeyUpdate(bytes: Buffer): KeyUpdate | undefined {
  let value: unknown
  try {
    value = decodeCbor(bytes, { maxBytes: 256, maxDepth: 1 })
  } catch {
    return undefined
  }
  if (!Array.isArray(value) || value.length !== 5) return undefined
  const [version, context, kid, masterSecret, until] = value
  if (version !== VERSION || context !== CONTEXT) return undefined
  if (!Buffer.isBuffer(kid) || kid.length < 1 || kid.length > 6) return undefined
  if (!Buffer.isBuffer(masterSecret) || (masterSecret.length !== 16 && masterSecret.length !== 32))
    return undefined
  if (typeof until !== 'number' || !Number.isSafeInteger(until) || until < 0) return undefined
  return { kid, masterSecret, until }
}
