import * as zlib from 'node:zlib'

let table: Uint32Array | undefined

function makeTable(): Uint32Array {
  const t = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    t[n] = c >>> 0
  }
  return t
}

/**
 * CRC-32 (IEEE 802.3, the zlib and PNG one), table-driven: the fallback for Node
 * before 20.15, which has no zlib.crc32. `value` continues a previous checksum.
 */
export function crc32Table(data: Uint8Array, value = 0): number {
  table ??= makeTable()
  let crc = ~value >>> 0
  for (let i = 0; i < data.length; i++) crc = table[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8)
  return ~crc >>> 0
}

const native: unknown = (zlib as { crc32?: unknown }).crc32

/** CRC-32 of `data`: zlib's native one where Node has it (20.15 and later), else the table. */
export const crc32: (data: Uint8Array, value?: number) => number =
  typeof native === 'function' ? (native as (data: Uint8Array, value?: number) => number) : crc32Table
