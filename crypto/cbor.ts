import { type DecodeOptions, decode } from 'cbor2'
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

/**
 * Encode deterministically (RFC 8949 §4.2.1: shortest heads, definite lengths,
 * map keys in bytewise order of their encodings); Buffers become byte strings.
 * Hand-written for the small value set above: it runs for every message on
 * the gateway's hot path (external AADs, COSE structures, cloud envelopes),
 * where a general-purpose encoder cost tens of microseconds per call.
 */
export function encodeCbor(value: CborValue): Buffer {
  const chunks: Buffer[] = []
  encodeInto(value, chunks, 0)
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)
}

/** Nesting the encoder accepts (values we build are shallow; this stops cycles). */
const MAX_ENCODE_DEPTH = 16

function head(major: number, n: number): Buffer {
  const m = major << 5
  if (n < 24) return Buffer.of(m | n)
  if (n < 0x100) return Buffer.of(m | 24, n)
  if (n < 0x10000) return Buffer.of(m | 25, n >> 8, n & 0xff)
  if (n < 0x100000000) {
    const b = Buffer.allocUnsafe(5)
    b[0] = m | 26
    b.writeUInt32BE(n, 1)
    return b
  }
  const b = Buffer.allocUnsafe(9)
  b[0] = m | 27
  b.writeBigUInt64BE(BigInt(n), 1)
  return b
}

function encodeInto(value: CborValue, out: Buffer[], depth: number): void {
  if (depth > MAX_ENCODE_DEPTH) {
    throw new CryptoError('CRYPTO_ERR_CBOR_ENCODE', `Value nests deeper than ${MAX_ENCODE_DEPTH}`)
  }
  if (Buffer.isBuffer(value)) {
    out.push(head(2, value.length), value)
  } else if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8')
    out.push(head(3, bytes.length), bytes)
  } else if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) {
      throw new CryptoError('CRYPTO_ERR_CBOR_ENCODE', `Expected a safe integer, got ${value}`)
    }
    out.push(value >= 0 ? head(0, value) : head(1, -1 - value))
  } else if (value === null) {
    out.push(Buffer.of(0xf6))
  } else if (value === true || value === false) {
    out.push(Buffer.of(value ? 0xf5 : 0xf4))
  } else if (Array.isArray(value)) {
    out.push(head(4, value.length))
    for (const item of value) encodeInto(item, out, depth + 1)
  } else if (value instanceof Map) {
    const entries = [...value].map(([k, v]) => {
      if (typeof k !== 'string' && !Number.isSafeInteger(k)) {
        throw new CryptoError('CRYPTO_ERR_CBOR_ENCODE', `Map keys must be integers or text, got ${String(k)}`)
      }
      return { key: encodeCbor(k), value: v }
    })
    entries.sort((a, b) => Buffer.compare(a.key, b.key))
    for (let i = 1; i < entries.length; i++) {
      if (entries[i - 1]!.key.equals(entries[i]!.key)) {
        throw new CryptoError('CRYPTO_ERR_CBOR_ENCODE', 'Map keys must be unique')
      }
    }
    out.push(head(5, entries.length))
    for (const e of entries) {
      out.push(e.key)
      encodeInto(e.value, out, depth + 1)
    }
  } else {
    throw new CryptoError(
      'CRYPTO_ERR_CBOR_ENCODE',
      `Value cannot be encoded as strict CBOR: ${Object.prototype.toString.call(value)}`,
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

function malformed(reason: string): CryptoError {
  return new CryptoError('CRYPTO_ERR_CBOR_MALFORMED', `CBOR input is not in the strict profile: ${reason}`)
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
