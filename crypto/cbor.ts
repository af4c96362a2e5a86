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
 * Decode exactly one CBOR item that fills `bytes`, in the strict profile: deterministic encoding
 * (RFC 8949 §4.2.1) on the way in, so definite lengths, preferred (shortest) integer and length
 * forms, map keys unique and in bytewise order of their encodings; integers in the safe range,
 * text in valid UTF-8, map keys integers or text. Everything outside the value set above (floats,
 * tags, `undefined`, other simple values) is refused, and nesting is bounded by `maxDepth`.
 * Throws `CRYPTO_ERR_CBOR_OVERSIZE` or `CRYPTO_ERR_CBOR_MALFORMED`; callers that handle received
 * bytes map those to an `OpenFailure`.
 *
 * Hand-written for this profile and checked against cbor2 (a general decoder, run with the same
 * strict options) on every test vector and on mutated and random inputs
 * (test/crypto/cbor-differential.test.ts). cbor2 decoded the same inputs, but copied its options
 * three times per call and made a generator step, an array and a container object per item: about
 * 10 KB of garbage per call and half of what the gateway allocates per sealed message
 * (docs/performance.md, "Allocation per message").
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
  const cursor: Cursor = { bytes, pos: 0, maxDepth }
  const value = readItem(cursor, 0)
  if (cursor.pos !== bytes.length) throw malformed(`${bytes.length - cursor.pos} byte(s) after the item`)
  return value
}

/** Where the decoder is in its input. */
interface Cursor {
  readonly bytes: Uint8Array
  pos: number
  readonly maxDepth: number
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** Needs `n` more bytes of input. */
function need(c: Cursor, n: number): void {
  if (c.bytes.length - c.pos < n) throw malformed('the input ends inside an item')
}

/**
 * The argument of a head whose additional information is `ai` (RFC 8949 §3): in its preferred
 * form, and at most 2^53 - 1.
 */
function readArgument(c: Cursor, ai: number): number {
  if (ai < 24) return ai
  const b = c.bytes
  const p = c.pos
  let value: number
  let floor: number
  if (ai === 24) {
    need(c, 1)
    value = b[p]!
    floor = 24
    c.pos = p + 1
  } else if (ai === 25) {
    need(c, 2)
    value = (b[p]! << 8) | b[p + 1]!
    floor = 0x100
    c.pos = p + 2
  } else if (ai === 26) {
    need(c, 4)
    value = b[p]! * 0x1000000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!)
    floor = 0x10000
    c.pos = p + 4
  } else if (ai === 27) {
    need(c, 8)
    const high = b[p]! * 0x1000000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!)
    const low = b[p + 4]! * 0x1000000 + ((b[p + 5]! << 16) | (b[p + 6]! << 8) | b[p + 7]!)
    if (high > 0x1fffff) throw malformed('an integer or length above 2^53 - 1')
    value = high * 0x100000000 + low
    floor = 0x100000000
    c.pos = p + 8
  } else if (ai === 31) {
    throw malformed('an indefinite length')
  } else {
    throw malformed(`reserved additional information ${ai}`)
  }
  if (value < floor) throw malformed(`an integer or length (${value}) not in its shortest form`)
  return value
}

function readItem(c: Cursor, depth: number): CborValue {
  need(c, 1)
  const initial = c.bytes[c.pos++]!
  const major = initial >> 5
  const ai = initial & 0x1f
  switch (major) {
    case 0:
      return readArgument(c, ai)
    case 1: {
      const n = readArgument(c, ai)
      if (n === Number.MAX_SAFE_INTEGER) throw malformed(`integer -1 - ${n} is outside the safe range`)
      return -1 - n
    }
    case 2: {
      const n = readArgument(c, ai)
      need(c, n)
      const start = c.pos
      c.pos += n
      // A copy: the value must not change when the caller reuses its input buffer.
      return Buffer.from(c.bytes.subarray(start, start + n))
    }
    case 3: {
      const n = readArgument(c, ai)
      need(c, n)
      const start = c.pos
      c.pos += n
      try {
        return utf8.decode(c.bytes.subarray(start, start + n))
      } catch {
        throw malformed('text that is not valid UTF-8')
      }
    }
    case 4: {
      enter(depth, c.maxDepth)
      const n = readArgument(c, ai)
      // Each item takes at least one byte: a length past the input is refused before any work.
      need(c, n)
      const items: CborValue[] = []
      for (let i = 0; i < n; i++) items.push(readItem(c, depth + 1))
      return items
    }
    case 5: {
      enter(depth, c.maxDepth)
      const n = readArgument(c, ai)
      need(c, 2 * n)
      const map: CborMap = new Map()
      let previousStart = -1
      let previousEnd = -1
      for (let i = 0; i < n; i++) {
        const keyStart = c.pos
        const keyMajor = c.bytes[keyStart]! >> 5
        if (keyMajor !== 0 && keyMajor !== 1 && keyMajor !== 3) {
          throw malformed('a map key is neither an integer nor a text string')
        }
        const key = readItem(c, depth + 1) as number | string
        if (previousStart >= 0 && compareBytes(c.bytes, previousStart, previousEnd, keyStart, c.pos) >= 0) {
          throw malformed('map keys not unique or not in the bytewise order of their encodings')
        }
        previousStart = keyStart
        previousEnd = c.pos
        map.set(key, readItem(c, depth + 1))
      }
      return map
    }
    case 6:
      throw malformed('a tag')
    default:
      if (ai === 20) return false
      if (ai === 21) return true
      if (ai === 22) return null
      if (ai === 23) throw malformed('undefined')
      if (ai >= 25 && ai <= 27) throw malformed('a floating-point number')
      if (ai === 31) throw malformed('a break outside an indefinite-length item')
      throw malformed(`simple value or reserved encoding 0x${initial.toString(16)}`)
  }
}

/** Bytewise order of two ranges of `b` (RFC 8949 §4.2.1): negative, zero or positive. */
function compareBytes(b: Uint8Array, aStart: number, aEnd: number, bStart: number, bEnd: number): number {
  const aLength = aEnd - aStart
  const bLength = bEnd - bStart
  const n = Math.min(aLength, bLength)
  for (let i = 0; i < n; i++) {
    const d = b[aStart + i]! - b[bStart + i]!
    if (d !== 0) return d
  }
  return aLength - bLength
}

/**
 * Encode deterministically (RFC 8949 §4.2.1: shortest heads, definite lengths,
 * map keys in bytewise order of their encodings); Buffers become byte strings.
 * Hand-written for the small value set above: it runs for every message on
 * the gateway's hot path (external AADs, COSE structures, cloud envelopes),
 * where a general-purpose encoder cost tens of microseconds per call. One pass
 * measures (and checks) the value, a second writes it into one buffer of that
 * size: no Buffer per head or item (docs/performance.md, "Allocation per message").
 */
export function encodeCbor(value: CborValue): Buffer {
  const out = Buffer.allocUnsafe(sizeOf(value, 0))
  writeValue(value, out, 0)
  return out
}

/** Nesting the encoder accepts (values we build are shallow; this stops cycles). */
const MAX_ENCODE_DEPTH = 16

function headSize(n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 0x100000000 ? 5 : 9
}

function writeHead(major: number, n: number, out: Buffer, at: number): number {
  const m = major << 5
  if (n < 24) {
    out[at] = m | n
    return at + 1
  }
  if (n < 0x100) {
    out[at] = m | 24
    out[at + 1] = n
    return at + 2
  }
  if (n < 0x10000) {
    out[at] = m | 25
    out.writeUInt16BE(n, at + 1)
    return at + 3
  }
  if (n < 0x100000000) {
    out[at] = m | 26
    out.writeUInt32BE(n, at + 1)
    return at + 5
  }
  out[at] = m | 27
  out.writeBigUInt64BE(BigInt(n), at + 1)
  return at + 9
}

function encodeError(message: string): CryptoError {
  return new CryptoError('CRYPTO_ERR_CBOR_ENCODE', message)
}

/** The encoded size of `value`; throws for anything outside the value set (as the writer would). */
function sizeOf(value: CborValue, depth: number): number {
  if (depth > MAX_ENCODE_DEPTH) throw encodeError(`Value nests deeper than ${MAX_ENCODE_DEPTH}`)
  if (Buffer.isBuffer(value)) return headSize(value.length) + value.length
  if (typeof value === 'string') {
    const n = Buffer.byteLength(value, 'utf8')
    return headSize(n) + n
  }
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw encodeError(`Expected a safe integer, got ${value}`)
    return headSize(value >= 0 ? value : -1 - value)
  }
  if (value === null || value === true || value === false) return 1
  if (Array.isArray(value)) {
    let n = headSize(value.length)
    for (const item of value) n += sizeOf(item, depth + 1)
    return n
  }
  if (value instanceof Map) {
    let n = headSize(value.size)
    for (const [k, v] of value) {
      if (typeof k !== 'string' && !Number.isSafeInteger(k)) {
        throw encodeError(`Map keys must be integers or text, got ${String(k)}`)
      }
      n += sizeOf(k, depth + 1) + sizeOf(v, depth + 1)
    }
    return n
  }
  throw encodeError(`Value cannot be encoded as strict CBOR: ${Object.prototype.toString.call(value)}`)
}

/** Writes `value` (checked by sizeOf) at `at`; returns the offset after it. */
function writeValue(value: CborValue, out: Buffer, at: number): number {
  if (Buffer.isBuffer(value)) {
    const next = writeHead(2, value.length, out, at)
    value.copy(out, next)
    return next + value.length
  }
  if (typeof value === 'string') {
    const next = writeHead(3, Buffer.byteLength(value, 'utf8'), out, at)
    return next + out.write(value, next, 'utf8')
  }
  if (typeof value === 'number')
    return value >= 0 ? writeHead(0, value, out, at) : writeHead(1, -1 - value, out, at)
  if (value === null) {
    out[at] = 0xf6
    return at + 1
  }
  if (value === true || value === false) {
    out[at] = value ? 0xf5 : 0xf4
    return at + 1
  }
  if (Array.isArray(value)) {
    let next = writeHead(4, value.length, out, at)
    for (const item of value) next = writeValue(item, out, next)
    return next
  }
  // A Map (sizeOf refused anything else): keys in bytewise order of their encodings.
  const map = value as CborMap
  const entries = [...map].map(([k, v]) => ({ key: encodeCbor(k), value: v }))
  entries.sort((a, b) => Buffer.compare(a.key, b.key))
  for (let i = 1; i < entries.length; i++) {
    if (entries[i - 1]!.key.equals(entries[i]!.key)) throw encodeError('Map keys must be unique')
  }
  let next = writeHead(5, entries.length, out, at)
  for (const e of entries) {
    next += e.key.copy(out, next)
    next = writeValue(e.value, out, next)
  }
  return next
}

function enter(depth: number, maxDepth: number): void {
  if (depth + 1 > maxDepth) throw malformed(`nesting deeper than ${maxDepth}`)
}

function malformed(reason: string): CryptoError {
  return new CryptoError('CRYPTO_ERR_CBOR_MALFORMED', `CBOR input is not in the strict profile: ${reason}`)
}
