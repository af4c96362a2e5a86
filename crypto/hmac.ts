import { createHmac, timingSafeEqual } from 'node:crypto'

/** HMAC-SHA256 truncated to its leftmost `length` bytes (RFC 9053 §3.1). */
export function hmacSha256(key: Buffer, data: Buffer, length: number): Buffer {
  return createHmac('sha256', key).update(data).digest().subarray(0, length)
}

/** Constant-time comparison; tags of different lengths never match. */
export function tagsEqual(received: Buffer, expected: Buffer): boolean {
  return received.length === expected.length && timingSafeEqual(received, expected)
}
