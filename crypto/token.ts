import { randomBytes } from 'node:crypto'
import { MAC_TAG_LENGTH } from './algorithms.js'
import { decodeCbor, encodeCbor } from './cbor.js'
import { decodeEnvelope, encodeEnvelope } from './envelope.js'
import { CryptoError } from './errors.js'
import { hmacSha256, tagsEqual } from './hmac.js'
import { EMPTY_PROTECTED, FORMAT_VERSION, macStructure } from './structures.js'
import { Alg, type DerivedContext } from './types.js'

/** Tokens older or newer than this many seconds are refused, unless the caller says otherwise. */
export const DEFAULT_TOKEN_WINDOW_SECONDS = 120
export const TOKEN_NONCE_LENGTH = 8
/** A token is about 40 bytes; anything much longer is not one. */
export const TOKEN_MAX_BYTES = 64
const TAG_LENGTH = MAC_TAG_LENGTH[Alg.HMAC_256_64]
const SHAPE = { fields: 2, partialIv: false } as const

export type TokenFailure = 'malformed' | 'unknown_kid' | 'bad_tag' | 'expired'

/** External AAD of a token: CBOR [1, "connect", client id]; binds the token to the CONNECT client id. */
export function tokenAad(clientId: string): Buffer {
  return encodeCbor([FORMAT_VERSION, 'connect', clientId])
}

/**
 * A one-time CONNECT token for the MQTT password field: an untagged COSE_Mac0
 * [h'', {4: kid}, bstr .cbor [timestamp, nonce], tag] with HMAC 256/64 under the token key.
 */
export function makeToken(
  ctx: DerivedContext,
  clientId: string,
  nowSeconds: number,
  nonce: Buffer = randomBytes(TOKEN_NONCE_LENGTH),
): Buffer {
  if (!Number.isSafeInteger(nowSeconds) || nowSeconds < 0) {
    throw new CryptoError(
      'CRYPTO_ERR_BAD_INPUT',
      `Expected a timestamp in whole seconds >= 0, got ${nowSeconds}`,
    )
  }
  if (nonce.length !== TOKEN_NONCE_LENGTH) {
    throw new CryptoError(
      'CRYPTO_ERR_BAD_INPUT',
      `Expected an ${TOKEN_NONCE_LENGTH}-byte nonce, got ${nonce.length}`,
    )
  }
  const payload = encodeCbor([nowSeconds, nonce])
  return encodeEnvelope(ctx.kid, undefined, [payload, tokenTag(ctx, clientId, payload)])
}

/**
 * Check a token: structure, key id, tag, then the time window. The nonce is
 * returned so the caller can refuse it a second time; this function keeps no state.
 */
export function checkToken(
  resolve: (kid: Buffer) => DerivedContext | undefined,
  bytes: Buffer,
  clientId: string,
  nowSeconds: number,
  windowSeconds: number,
): { kid: Buffer; nonce: Buffer; timestamp: number } | { failure: TokenFailure } {
  if (!Number.isSafeInteger(nowSeconds) || !Number.isSafeInteger(windowSeconds) || windowSeconds < 0) {
    throw new CryptoError(
      'CRYPTO_ERR_BAD_INPUT',
      `Expected whole seconds for now and a window >= 0, got ${nowSeconds} and ${windowSeconds}`,
    )
  }
  const envelope = decodeEnvelope(bytes, TOKEN_MAX_BYTES, SHAPE)
  if (typeof envelope === 'string') return { failure: 'malformed' }
  const [payload, tag] = envelope.fields as [Buffer, Buffer]
  if (tag.length !== TAG_LENGTH) return { failure: 'malformed' }
  const ctx = resolve(envelope.kid)
  if (!ctx) return { failure: 'unknown_kid' }
  if (!ctx.kid.equals(envelope.kid)) return { failure: 'bad_tag' }
  if (!tagsEqual(tag, tokenTag(ctx, clientId, payload))) return { failure: 'bad_tag' }
  const body = parsePayload(payload)
  if (!body) return { failure: 'malformed' }
  if (Math.abs(nowSeconds - body.timestamp) > windowSeconds) return { failure: 'expired' }
  return { kid: envelope.kid, ...body }
}

function tokenTag(ctx: DerivedContext, clientId: string, payload: Buffer): Buffer {
  return hmacSha256(ctx.tokenKey, macStructure(EMPTY_PROTECTED, tokenAad(clientId), payload), TAG_LENGTH)
}

function parsePayload(payload: Buffer): { timestamp: number; nonce: Buffer } | undefined {
  let value: unknown
  try {
    value = decodeCbor(payload, { maxBytes: payload.length, maxDepth: 1 })
  } catch {
    return undefined
  }
  if (!Array.isArray(value) || value.length !== 2) return undefined
  const [timestamp, nonce] = value
  if (typeof timestamp !== 'number' || timestamp < 0) return undefined
  if (!Buffer.isBuffer(nonce) || nonce.length !== TOKEN_NONCE_LENGTH) return undefined
  return { timestamp, nonce }
}
