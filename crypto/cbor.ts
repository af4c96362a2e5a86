import { type DecodeOptions, decode, type EncodeOptions, encode } from 'cbor2'
import { sortCoreDeterministic } from 'cbor2/sorts'
import { CryptoError } from './errors.js'

/**
 * The CBOR values our wire formats use. Integers are JS numbers (safe range
 * only), byte strings are Buffers, maps are Maps with integer or text keys.
 * There are no floats, tags, `undefined` or other simple values.
 */
export type CborValue = number | string | boolean | null | Buffer | CborValue[] | CborMap
export type CborMap = Map<number | string, CborValue>

export interface CborLimits {
  /** Inputs longer than this are refused before any parsing. */
  maxBytes: number
  /** Nesting of arrays and maps; the top-level container is depth 1. */
  maxDepth?: number
}

export const DEFAULT_MAX_DEPTH = 4

/**
 * Deterministic encoding (RFC 8949 §4.2.1) on the way in: definite lengths,
 * preferred (shortest) integer and length forms, map keys unique and in
 * bytewise order. Everything outside the value set above is refused.
 */
const DECODE_OPTIONS: DecodeOptions = {
  rejectStreaming: true,
  requirePreferred: true,
  rejectDuplicateKeys: true,
  sortKeys: sortCoreDeterministic,
  rejectFloats: true,
  rejectSimple: true,
  rejectUndefined: true,
  rejectBigInts: true,
  preferMap: true,
  ignoreGlobalTags: true,
}

const ENCODE_OPTIONS: EncodeOptions = {
  sortKeys: sortCoreDeterministic,
  rejectFloats: true,
  rejectUndefined: true,
  rejectBigInts: true,
}

/**
 * Decode exactly one CBOR item that fills `bytes`, in the strict profile.
 * Throws `CRYPTO_ERR_CBOR_OVERSIZE` or `CRYPTO_ERR_CBOR_MALFORMED`; callers
 * that handle received bytes map those to an `OpenFailure`.
 */
export function decodeCbor(bytes: Uint8Array, limits: CborLimits): CborValue {
  const maxDepth = limits.maxDepth ?? DEFAULT_MAX_DEPTH
  if (bytes.length > limits.maxBytes) {
    throw new CryptoError(
      'CRYPTO_ERR_CBOR_OVERSIZE',
      `CBOR input is ${bytes.length} bytes, over the limit of ${limits.maxBytes}`,
    )
  }
  if (bytes.length === 0) throw new CryptoError('CRYPTO_ERR_CBOR_MALFORMED', 'CBOR input is empty')
  let raw: unknown
  try {
    // cbor2 counts depth in its own units (about two per level); our walk enforces the exact bound.
    raw = decode(bytes, { ...DECODE_OPTIONS, maxDepth: 2 * maxDepth + 2 })
  } catch (err) {
    throw new CryptoError(
      'CRYPTO_ERR_CBOR_MALFORMED',
      `CBOR input is not in the strict profile: ${describe(err)}`,
      {
        cause: err,
      },
    )
  }
  return fromDecoded(raw, 0, maxDepth)
}

/** Encode deterministically; Buffers become byte strings. */
export function encodeCbor(value: CborValue): Buffer {
  try {
    const out = encode(toEncodable(value), ENCODE_OPTIONS)
    return Buffer.from(out.buffer, out.byteOffset, out.byteLength)
  } catch (err) {
    if (err instanceof CryptoError) throw err
    throw new CryptoError(
      'CRYPTO_ERR_CBOR_ENCODE',
      `Value cannot be encoded as strict CBOR: ${describe(err)}`,
      {
        cause: err,
      },
    )
  }
}

function fromDecoded(raw: unknown, depth: number, maxDepth: number): CborValue {
  if (raw === null || typeof raw === 'string' || typeof raw === 'boolean') return raw
  if (typeof raw === 'number') {
    if (!Number.isSafeInteger(raw)) throw malformed(`integer ${raw} is outside the safe range`)
    return raw
  }
  if (raw instanceof Uint8Array) return Buffer.from(raw)
  if (Array.isArray(raw)) {
    enter(depth, maxDepth)
    return raw.map((item) => fromDecoded(item, depth + 1, maxDepth))
  }
  if (raw instanceof Map) {
    enter(depth, maxDepth)
    const out: CborMap = new Map()
    for (const [key, item] of raw) {
      if (typeof key !== 'string' && !(typeof key === 'number' && Number.isSafeInteger(key))) {
        throw malformed('a map key is neither an integer nor a text string')
      }
      out.set(key, fromDecoded(item, depth + 1, maxDepth))
    }
    return out
  }
  // Tags (including bignums), unassigned simple values and anything else cbor2 can produce.
  throw malformed(`unexpected CBOR item ${Object.prototype.toString.call(raw)}`)
}

function enter(depth: number, maxDepth: number): void {
  if (depth + 1 > maxDepth) throw malformed(`nesting deeper than ${maxDepth}`)
}

function toEncodable(value: CborValue): unknown {
  if (Buffer.isBuffer(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
  if (typeof value === 'number' && !Number.isSafeInteger(value)) {
    throw new CryptoError('CRYPTO_ERR_CBOR_ENCODE', `Expected a safe integer, got ${value}`)
  }
  if (Array.isArray(value)) return value.map(toEncodable)
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [k, toEncodable(v)]))
  return value
}

function malformed(reason: string): CryptoError {
  return new CryptoError('CRYPTO_ERR_CBOR_MALFORMED', `CBOR input is not in the strict profile: ${reason}`)
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
