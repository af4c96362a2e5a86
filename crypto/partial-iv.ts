import { CryptoError } from './errors.js'

/** Largest sender sequence number: the Partial IV is at most 5 bytes (RFC 8613 §3.3). */
export const MAX_SEQ = 2 ** 40 - 1

export function assertSeq(seq: number): void {
  if (!Number.isSafeInteger(seq) || seq < 0 || seq > MAX_SEQ) {
    throw new CryptoError('CRYPTO_ERR_BAD_SEQ', `Expected a sequence number from 0 to 2^40 - 1, got ${seq}`)
  }
}

/** The Partial IV: the sequence number in the fewest big-endian bytes, h'00' for 0 (RFC 8613 §6.1). */
export function encodePartialIv(seq: number): Buffer {
  assertSeq(seq)
  const bytes: number[] = []
  let rest = seq
  do {
    bytes.unshift(rest % 256)
    rest = Math.floor(rest / 256)
  } while (rest > 0)
  return Buffer.from(bytes)
}

/** The sequence number of a received Partial IV, or undefined if it is empty, over 5 bytes or not minimal. */
export function decodePartialIv(piv: Buffer): number | undefined {
  if (piv.length < 1 || piv.length > 5) return undefined
  if (piv.length > 1 && piv[0] === 0) return undefined
  let seq = 0
  for (const byte of piv) seq = seq * 256 + byte
  return seq
}
