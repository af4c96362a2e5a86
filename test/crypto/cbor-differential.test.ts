/**
 * The strict CBOR decoder (crypto/cbor.ts) against a reference: cbor2, a general decoder, run
 * with the strict options the gateway used it with before its own decoder, and the same check of
 * what it returned (safe integers, integer or text map keys, nesting). Both must accept the same
 * inputs and return the same values, and refuse the same inputs, on the seeds (every CBOR item of
 * test/crypto/vectors.json and encodings of generated values), on mutations of those and on
 * random bytes. The generator is seeded: a failure names its input and repeats.
 */
import { readFileSync } from 'node:fs'
import { type DecodeOptions, decode } from 'cbor2'
import { sortCoreDeterministic } from 'cbor2/sorts'
import { describe, expect, it } from 'vitest'
import { createRandom } from '../../bench/lib/mqtt-fuzz.mjs'
import {
  type CborLimits,
  type CborMap,
  type CborValue,
  DEFAULT_MAX_DEPTH,
  decodeCbor,
  encodeCbor,
} from '../../crypto/cbor.js'
import { CryptoError } from '../../crypto/errors.js'

const REFERENCE_OPTIONS: DecodeOptions = {
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

/** Thrown by the reference for anything outside the profile. */
class Refused extends Error {}

function referenceDecode(bytes: Uint8Array, limits: CborLimits): CborValue {
  const maxDepth = limits.maxDepth ?? DEFAULT_MAX_DEPTH
  if (bytes.length > limits.maxBytes || bytes.length === 0) throw new Refused('size')
  let raw: unknown
  try {
    raw = decode(bytes, { ...REFERENCE_OPTIONS, maxDepth: 2 * maxDepth + 2 })
  } catch (err) {
    throw new Refused(String(err))
  }
  return fromReference(raw, 0, maxDepth)
}

function fromReference(raw: unknown, depth: number, maxDepth: number): CborValue {
  if (raw === null || typeof raw === 'string' || typeof raw === 'boolean') return raw
  if (typeof raw === 'number') {
    if (!Number.isSafeInteger(raw)) throw new Refused('unsafe integer')
    return raw
  }
  if (raw instanceof Uint8Array) return Buffer.from(raw)
  if (Array.isArray(raw) || raw instanceof Map) {
    if (depth + 1 > maxDepth) throw new Refused('depth')
    if (Array.isArray(raw)) return raw.map((item) => fromReference(item, depth + 1, maxDepth))
    const out: CborMap = new Map()
    for (const [key, item] of raw) {
      if (typeof key !== 'string' && !(typeof key === 'number' && Number.isSafeInteger(key))) {
        throw new Refused('map key')
      }
      out.set(key, fromReference(item, depth + 1, maxDepth))
    }
    return out
  }
  throw new Refused('other item')
}

type Outcome = { ok: true; value: CborValue } | { ok: false }

/** What a decoder made of `bytes`: its value, or a refusal of the kind it throws for refusals. */
function outcome(
  decoder: (bytes: Uint8Array, limits: CborLimits) => CborValue,
  refusal: abstract new (...args: never[]) => Error,
  bytes: Uint8Array,
  limits: CborLimits,
): Outcome {
  try {
    return { ok: true, value: decoder(bytes, limits) }
  } catch (err) {
    if (!(err instanceof refusal)) throw err
    return { ok: false }
  }
}

const ours = (bytes: Uint8Array, limits: CborLimits) => outcome(decodeCbor, CryptoError, bytes, limits)
const reference = (bytes: Uint8Array, limits: CborLimits) => outcome(referenceDecode, Refused, bytes, limits)

/** A seeded generator in [0, 1) (the fuzzer's mulberry32), so that every run sees the same inputs. */
function random(seed: number): () => number {
  const r = createRandom(seed)
  return () => r.next() / 0x1_0000_0000
}

/** Integers at the edges of each head size and of the safe range. */
const EDGE_INTEGERS = [
  0,
  1,
  23,
  24,
  255,
  256,
  65_535,
  65_536,
  4_294_967_295,
  4_294_967_296,
  Number.MAX_SAFE_INTEGER - 1,
  Number.MAX_SAFE_INTEGER,
]

function generate(next: () => number, depth: number): CborValue {
  const pick = Math.floor(next() * (depth >= 3 ? 6 : 8))
  const int = () => {
    const edge = EDGE_INTEGERS[Math.floor(next() * EDGE_INTEGERS.length)]!
    return next() < 0.5 ? edge : Math.floor(next() * 1000)
  }
  switch (pick) {
    case 0:
      return int()
    case 1:
      return -1 - Math.min(int(), Number.MAX_SAFE_INTEGER - 1)
    case 2:
      return Buffer.from(Array.from({ length: Math.floor(next() * 30) }, () => Math.floor(next() * 256)))
    case 3:
      return ['', 'a/b', 'devices/pub-0/data', 'é', '\u{1F600}', 'x'.repeat(30)][Math.floor(next() * 6)]!
    case 4:
      return [null, true, false][Math.floor(next() * 3)]!
    case 5:
      return int()
    case 6:
      return Array.from({ length: Math.floor(next() * 5) }, () => generate(next, depth + 1))
    default: {
      const map: CborMap = new Map()
      const size = Math.floor(next() * 5)
      for (let i = 0; i < size; i++) {
        const key =
          next() < 0.5 ? Math.floor(next() * 40) - 20 : ['a', 'b', 'kid', 'alg', ''][Math.floor(next() * 5)]!
        map.set(key, generate(next, depth + 1))
      }
      return map
    }
  }
}

/** Every hex string of the vectors file that the reference decodes: COSE structures, envelopes, tokens. */
function vectorSeeds(): Buffer[] {
  const vectors: unknown = JSON.parse(readFileSync(new URL('./vectors.json', import.meta.url), 'utf8'))
  const seeds: Buffer[] = []
  const walk = (v: unknown) => {
    if (typeof v === 'string' && v.length >= 2 && v.length % 2 === 0 && /^[0-9a-f]+$/.test(v)) {
      const bytes = Buffer.from(v, 'hex')
      if (reference(bytes, { maxBytes: 4096, maxDepth: 4 }).ok) seeds.push(bytes)
    } else if (Array.isArray(v)) v.forEach(walk)
    else if (v !== null && typeof v === 'object') Object.values(v).forEach(walk)
  }
  walk(vectors)
  return seeds
}

function mutate(input: Buffer, next: () => number): Buffer {
  const bytes = Buffer.from(input)
  const at = Math.floor(next() * bytes.length)
  switch (Math.floor(next() * 6)) {
    case 0:
      bytes[at] = Math.floor(next() * 256)
      return bytes
    case 1:
      bytes[at] = bytes[at]! ^ (1 << Math.floor(next() * 8))
      return bytes
    case 2:
      return bytes.subarray(0, at)
    case 3:
      return Buffer.concat([bytes.subarray(0, at), Buffer.of(Math.floor(next() * 256)), bytes.subarray(at)])
    case 4:
      return Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1)])
    default:
      // Heads with the edge values of each argument size.
      bytes[at] = [0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1f, 0x9f, 0xbf, 0xf4, 0xf7, 0xf8, 0xf9, 0xff][
        Math.floor(next() * 14)
      ]!
      return bytes
  }
}

function expectSame(bytes: Uint8Array, limits: CborLimits): boolean {
  const a = ours(bytes, limits)
  const b = reference(bytes, limits)
  const input = `${Buffer.from(bytes).toString('hex')} with ${JSON.stringify(limits)}`
  expect(a.ok, `accepted by one decoder only: ${input}`).toBe(b.ok)
  if (a.ok && b.ok) expect(a.value, `decoded differently: ${input}`).toEqual(b.value)
  return a.ok
}

describe('the strict CBOR decoder against cbor2 with the strict options', () => {
  const limits: CborLimits = { maxBytes: 4096, maxDepth: 4 }

  it('agrees on every CBOR item of the test vectors, and on each with its limits one tighter', () => {
    const seeds = vectorSeeds()
    expect(seeds.length).toBeGreaterThan(40)
    for (const seed of seeds) {
      expect(expectSame(seed, limits)).toBe(true)
      expectSame(seed, { maxBytes: seed.length - 1, maxDepth: 4 })
      expectSame(seed, { maxBytes: 4096, maxDepth: 1 })
    }
  })

  it('agrees on 3,000 encoded generated values (each accepted) at depths 1 to 4', () => {
    const next = random(14)
    let accepted = 0
    for (let i = 0; i < 3_000; i++) {
      const bytes = encodeCbor(generate(next, 0))
      if (expectSame(bytes, { maxBytes: 4096, maxDepth: 1 + (i % 4) })) accepted++
    }
    // Deeper values are refused under the smaller depths; most are accepted.
    expect(accepted).toBeGreaterThan(1_500)
  })

  it('agrees on 30,000 mutations of the seeds, refusing and accepting alike', () => {
    const next = random(2026)
    const seeds = [...vectorSeeds(), ...Array.from({ length: 200 }, () => encodeCbor(generate(next, 0)))]
    let accepted = 0
    let refused = 0
    for (let i = 0; i < 30_000; i++) {
      let bytes = seeds[i % seeds.length]!
      const rounds = 1 + Math.floor(next() * 3)
      for (let r = 0; r < rounds && bytes.length > 0; r++) bytes = mutate(bytes, next)
      if (expectSame(bytes, limits)) accepted++
      else refused++
    }
    // The mutations reach both sides of the decision.
    expect(accepted).toBeGreaterThan(1_000)
    expect(refused).toBeGreaterThan(10_000)
  })

  it('agrees on 30,000 random inputs of 1 to 12 bytes', () => {
    const next = random(7)
    let accepted = 0
    for (let i = 0; i < 30_000; i++) {
      const bytes = Buffer.from(
        Array.from({ length: 1 + Math.floor(next() * 12) }, () => Math.floor(next() * 256)),
      )
      if (expectSame(bytes, limits)) accepted++
    }
    expect(accepted).toBeGreaterThan(100)
  })
})
