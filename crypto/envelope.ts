import { type CborMap, decodeCbor, encodeCbor } from './cbor.js'
import { MAX_KID_LENGTH } from './context.js'
import { CryptoError } from './errors.js'
import { decodePartialIv } from './partial-iv.js'

/** COSE header labels (RFC 9052 §3.1). */
export const HeaderLabel = { alg: 1, kid: 4, partialIv: 6 } as const

/**
 * The frame our symmetric objects share, untagged:
 * [protected: h'', unprotected: {4: kid, ? 6: partial IV}, ...byte strings].
 * Encrypt0 has one byte string (ciphertext), Mac0 and the token two (payload, tag).
 */
export interface Envelope {
  kid: Buffer
  /** Present when the shape asks for it. */
  partialIv: Buffer | undefined
  seq: number | undefined
  fields: Buffer[]
}

export interface EnvelopeShape {
  fields: number
  partialIv: boolean
}

export function encodeEnvelope(kid: Buffer, partialIv: Buffer | undefined, fields: Buffer[]): Buffer {
  const unprotected: CborMap = new Map([[HeaderLabel.kid, kid]])
  if (partialIv) unprotected.set(HeaderLabel.partialIv, partialIv)
  return encodeCbor([Buffer.alloc(0), unprotected, ...fields])
}

/** Parse the frame strictly; any deviation is 'malformed', a long input 'oversize'. */
export function decodeEnvelope(
  bytes: Buffer,
  maxBytes: number,
  shape: EnvelopeShape,
): Envelope | 'malformed' | 'oversize' {
  if (bytes.length > maxBytes) return 'oversize'
  let value: unknown
  try {
    value = decodeCbor(bytes, { maxBytes, maxDepth: 2 })
  } catch (err) {
    if (err instanceof CryptoError && err.code === 'CRYPTO_ERR_CBOR_OVERSIZE') return 'oversize'
    return 'malformed'
  }
  if (!Array.isArray(value) || value.length !== 2 + shape.fields) return 'malformed'
  const [protectedHeader, unprotected, ...fields] = value
  if (!Buffer.isBuffer(protectedHeader) || protectedHeader.length !== 0) return 'malformed'
  if (!(unprotected instanceof Map) || unprotected.size !== (shape.partialIv ? 2 : 1)) return 'malformed'
  const kid = unprotected.get(HeaderLabel.kid)
  if (!Buffer.isBuffer(kid) || kid.length < 1 || kid.length > MAX_KID_LENGTH) return 'malformed'
  let partialIv: Buffer | undefined
  let seq: number | undefined
  if (shape.partialIv) {
    const piv = unprotected.get(HeaderLabel.partialIv)
    if (!Buffer.isBuffer(piv)) return 'malformed'
    seq = decodePartialIv(piv)
    if (seq === undefined) return 'malformed'
    partialIv = piv
  }
  const bstrs: Buffer[] = []
  for (const field of fields) {
    if (!Buffer.isBuffer(field)) return 'malformed'
    bstrs.push(field)
  }
  return { kid, partialIv, seq, fields: bstrs }
}
