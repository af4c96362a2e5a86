import { crc32 } from './crc32.js'

/**
 * Acknowledgements are kept beside each segment, in `seg-N.ack`, as fixed
 * 20-byte entries, little-endian: magic 0x31414745 ("EGA1"), the first
 * sequence number of a run (8 bytes), the run's length (4 bytes), CRC-32 of
 * the 16 bytes before it. A run says "seq .. seq + count - 1 are acknowledged".
 *
 * They are written lazily (batched, not synced): an ack lost to a crash only
 * means that message is sent again, with its sequence number, so the cloud
 * can drop the duplicate. A damaged entry fails its checksum and is ignored
 * (same outcome). The ack file goes with its segment when the segment is
 * deleted, so it never needs compaction.
 */
export const ACK_ENTRY_BYTES = 20
const ACK_MAGIC = 0x31414745
const TWO_32 = 2 ** 32

export type AckRun = readonly [seq: number, count: number]

/** Runs of consecutive sequence numbers in `seqs` (sorted here). */
export function toRuns(seqs: number[]): AckRun[] {
  seqs.sort((a, b) => a - b)
  const runs: AckRun[] = []
  let start = seqs[0]
  let count = 0
  for (const seq of seqs) {
    if (start !== undefined && seq === start + count && count < 0xffffffff) count++
    else {
      if (start !== undefined && count > 0) runs.push([start, count])
      start = seq
      count = 1
    }
  }
  if (start !== undefined && count > 0) runs.push([start, count])
  return runs
}

export function encodeAckRuns(runs: ReadonlyArray<AckRun>): Buffer {
  const buf = Buffer.allocUnsafe(runs.length * ACK_ENTRY_BYTES)
  let pos = 0
  for (const [seq, count] of runs) {
    buf.writeUInt32LE(ACK_MAGIC, pos)
    buf.writeUInt32LE(seq % TWO_32, pos + 4)
    buf.writeUInt32LE(Math.floor(seq / TWO_32), pos + 8)
    buf.writeUInt32LE(count, pos + 12)
    buf.writeUInt32LE(crc32(buf.subarray(pos, pos + 16)), pos + 16)
    pos += ACK_ENTRY_BYTES
  }
  return buf
}

export interface ParsedAcks {
  runs: AckRun[]
  /** Entries that failed their magic or checksum. */
  damaged: number
  /** Length of the whole entries; bytes past it are a torn last entry. */
  wholeBytes: number
}

export function parseAcks(buf: Buffer): ParsedAcks {
  const runs: AckRun[] = []
  let damaged = 0
  const wholeBytes = buf.length - (buf.length % ACK_ENTRY_BYTES)
  for (let pos = 0; pos < wholeBytes; pos += ACK_ENTRY_BYTES) {
    const good =
      buf.readUInt32LE(pos) === ACK_MAGIC && crc32(buf.subarray(pos, pos + 16)) === buf.readUInt32LE(pos + 16)
    if (!good) {
      damaged++
      continue
    }
    runs.push([buf.readUInt32LE(pos + 4) + buf.readUInt32LE(pos + 8) * TWO_32, buf.readUInt32LE(pos + 12)])
  }
  return { runs, damaged, wholeBytes }
}
