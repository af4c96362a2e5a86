import { MAC_TAG_LENGTH } from './algorithms.js'
import { decodeEnvelope, encodeEnvelope } from './envelope.js'
import { hmacSha256, tagsEqual } from './hmac.js'
import { encodePartialIv } from './partial-iv.js'
import { EMPTY_PROTECTED, externalAad, macStructure } from './structures.js'
import type { DerivedContext, Direction, OpenFailure, ProtectedHeader } from './types.js'

const SHAPE = { fields: 2, partialIv: true } as const

/**
 * Integrity only: an untagged COSE_Mac0 [h'', {4: kid, 6: partial IV}, payload, tag]
 * with HMAC-SHA256 (alg 4: 8-byte tag, alg 5: 32-byte tag) under the MAC key of `direction`.
 */
export function macProtect(
  ctx: DerivedContext,
  direction: Direction,
  seq: number,
  payload: Buffer,
  topic: string,
): Buffer {
  const partialIv = encodePartialIv(seq)
  const tag = computeTag(ctx, direction, partialIv, payload, topic)
  return encodeEnvelope(ctx.kid, partialIv, [payload, tag])
}

/** The kid and sequence number of a Mac0 object, read before any key is chosen. Nothing is verified yet. */
export function readMacHeader(bytes: Buffer, maxBytes: number): ProtectedHeader | OpenFailure {
  const envelope = decodeEnvelope(bytes, maxBytes, SHAPE)
  if (typeof envelope === 'string') return envelope
  return { kid: envelope.kid, seq: envelope.seq! }
}

/** Verify a Mac0 object received in `direction`; the same rules as `open` (replay check is the caller's). */
export function macOpen(
  ctx: DerivedContext,
  direction: Direction,
  bytes: Buffer,
  topic: string,
  maxBytes: number,
): { payload: Buffer; seq: number } | { failure: OpenFailure } {
  const envelope = decodeEnvelope(bytes, maxBytes, SHAPE)
  if (typeof envelope === 'string') return { failure: envelope }
  const [payload, tag] = envelope.fields as [Buffer, Buffer]
  if (tag.length !== MAC_TAG_LENGTH[ctx.mac]) return { failure: 'malformed' }
  if (!envelope.kid.equals(ctx.kid)) return { failure: 'bad_tag' }
  const expected = computeTag(ctx, direction, envelope.partialIv!, payload, topic)
  if (!tagsEqual(tag, expected)) return { failure: 'bad_tag' }
  return { payload, seq: envelope.seq! }
}

function computeTag(
  ctx: DerivedContext,
  direction: Direction,
  partialIv: Buffer,
  payload: Buffer,
  topic: string,
) {
  const toBeMaced = macStructure(EMPTY_PROTECTED, externalAad(ctx.mac, ctx.kid, partialIv, topic), payload)
  return hmacSha256(ctx.macKey[direction], toBeMaced, MAC_TAG_LENGTH[ctx.mac])
}
