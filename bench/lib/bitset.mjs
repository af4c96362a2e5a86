/** Fixed-size bit sets for message ids (counters 0..size-1), sent between processes as base64. */

export function createBits(size) {
  return new Uint8Array(Math.ceil(size / 8))
}

/** Sets bit `i`; true when it was not set before. Ids beyond the set are ignored (false). */
export function setBit(bits, i) {
  const byte = i >>> 3
  if (byte >= bits.length) return false
  const mask = 1 << (i & 7)
  if (bits[byte] & mask) return false
  bits[byte] |= mask
  return true
}

export function hasBit(bits, i) {
  const byte = i >>> 3
  return byte < bits.length && (bits[byte] & (1 << (i & 7))) !== 0
}

export function countBits(bits) {
  let n = 0
  for (let i = 0; i < bits.length; i++) {
    let b = bits[i]
    while (b) {
      b &= b - 1
      n++
    }
  }
  return n
}

/** How many bits are set in `a` and not in `b` (acknowledged and never received). */
export function countAndNot(a, b) {
  let n = 0
  for (let i = 0; i < a.length; i++) {
    let x = a[i] & ~(i < b.length ? b[i] : 0) & 0xff
    while (x) {
      x &= x - 1
      n++
    }
  }
  return n
}

export const bitsToBase64 = (bits) =>
  Buffer.from(bits.buffer, bits.byteOffset, bits.byteLength).toString('base64')
export const bitsFromBase64 = (text) => new Uint8Array(Buffer.from(text, 'base64'))
