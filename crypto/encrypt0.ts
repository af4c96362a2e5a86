import { aeadDecrypt, aeadEncrypt } from './aead.js'
import { nonceFor } from './context.js'
import { decodeEnvelope, encodeEnvelope } from './envelope.js'
import { encodePartialIv } from './partial-iv.js'
import { EMPTY_PROTECTED, encStructure, externalAad } from './structures.js'
import type { DerivedContext, Direction, OpenFailure, ProtectedHeader } from './types.js'

const SHAPE = { fields: 1, partialIv: true } as const

/**
 * Seal a payload as an untagged COSE_Encrypt0:
 * [h'', {4: kid, 6: partial IV}, ciphertext || tag], with the sender key of
 * `direction`, the RFC 8613 nonce for `seq`, and the topic in the external AAD.
 * The caller must never use a `seq` twice in one direction.
 */
export function seal(
  ctx: DerivedContext,
  direction: Direction,
  seq: number,
  plaintext: Buffer,
  topic: string,
): Buffer {
  const partialIv = encodePartialIv(seq)
  const aad = encStructure(EMPTY_PROTECTED, externalAad(ctx.aead, ctx.kid, partialIv, topic))
  const ciphertext = aeadEncrypt(
    ctx.aead,
    ctx.aeadKey[direction],
    nonceFor(ctx, direction, seq),
    aad,
    plaintext,
  )
  return encodeEnvelope(ctx.kid, partialIv, [ciphertext])
}

/** The kid and sequence number of a sealed payload, read before any key is chosen. Nothing is verified yet. */
export function readHeader(bytes: Buffer, maxBytes: number): ProtectedHeader | OpenFailure {
  const envelope = decodeEnvelope(bytes, maxBytes, SHAPE)
  if (typeof envelope === 'string') return envelope
  return { kid: envelope.kid, seq: envelope.seq! }
}

/**
 * Open a sealed payload received in `direction`. The replay check is the
 * caller's, after this succeeds. A kid other than this context's cannot verify
 * under its keys and fails as 'bad_tag': the caller maps kid to device with
 * `readHeader` first and reports 'unknown_kid' or 'wrong_device' itself.
 */
export function open(
  ctx: DerivedContext,
  direction: Direction,
  bytes: Buffer,
  topic: string,
  maxBytes: number,
): { plaintext: Buffer; seq: number } | { failure: OpenFailure } {
  const envelope = decodeEnvelope(bytes, maxBytes, SHAPE)
  if (typeof envelope === 'string') return { failure: envelope }
  // The shape asks for a partial IV, so decodeEnvelope has set it and seq.
  const seq = envelope.seq!
  if (!envelope.kid.equals(ctx.kid)) return { failure: 'bad_tag' }
  const aad = encStructure(EMPTY_PROTECTED, externalAad(ctx.aead, envelope.kid, envelope.partialIv!, topic))
  const nonce = nonceFor(ctx, direction, seq)
  const plaintext = aeadDecrypt(ctx.aead, ctx.aeadKey[direction], nonce, aad, envelope.fields[0]!)
  if (!plaintext) return { failure: 'bad_tag' }
  return { plaintext, seq }
}
