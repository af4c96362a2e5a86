/** The first byte and the remaining length of an MQTT packet (MQTT 3.1.1 section 2.2). */
export interface FixedHeader {
  /** Packet type, 0 to 15. */
  type: number
  /** The low four bits of the first byte. */
  flags: number
  /** Bytes after the fixed header. */
  remaining: number
  /** Bytes of the fixed header itself: 2 to 5. */
  headerBytes: number
}

/** `readFixedHeader` results besides a header length. */
export const HEADER_INCOMPLETE = 0
export const HEADER_MALFORMED = -1

/**
 * Decodes the fixed header at `offset` into `out` (reused: no allocation on the
 * hot path) and returns its length, HEADER_INCOMPLETE when `buf` ends first, or
 * HEADER_MALFORMED when the remaining length takes more than 4 bytes.
 * Only these at most 5 bytes are read, so a size limit can be applied before
 * any of the body is buffered.
 */
export function readFixedHeader(buf: Buffer, offset: number, out: FixedHeader): number {
  if (offset >= buf.length) return HEADER_INCOMPLETE
  const first = buf[offset]!
  let remaining = 0
  let multiplier = 1
  for (let i = 1; i <= 4; i++) {
    if (offset + i >= buf.length) return HEADER_INCOMPLETE
    const byte = buf[offset + i]!
    remaining += (byte & 0x7f) * multiplier
    if ((byte & 0x80) === 0) {
      out.type = first >> 4
      out.flags = first & 0x0f
      out.remaining = remaining
      out.headerBytes = i + 1
      return i + 1
    }
    multiplier *= 128
  }
  return HEADER_MALFORMED
}
