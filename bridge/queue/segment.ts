import { crc32 } from './crc32.js'

/**
 * A segment file starts with a 16-byte header, little-endian: magic 0x31534745
 * ("EGS1"), the segment's base sequence number (8 bytes), CRC-32 of those 8
 * bytes. The base is the next sequence number when the segment was made, synced
 * before any record goes in, so the newest segment alone keeps the sequence
 * rising across restarts even when every record before it was acknowledged
 * and deleted.
 */
export const SEGMENT_HEADER_BYTES = 16
const SEGMENT_MAGIC = 0x31534745
const TWO_32 = 2 ** 32

export function encodeSegmentHeader(baseSeq: number): Buffer {
  const buf = Buffer.alloc(SEGMENT_HEADER_BYTES)
  buf.writeUInt32LE(SEGMENT_MAGIC, 0)
  buf.writeUInt32LE(baseSeq % TWO_32, 4)
  buf.writeUInt32LE(Math.floor(baseSeq / TWO_32), 8)
  buf.writeUInt32LE(crc32(buf.subarray(4, 12)), 12)
  return buf
}

/** The base sequence number in a segment header, or undefined when the header is damaged or short. */
export function decodeSegmentHeader(buf: Buffer): number | undefined {
  if (buf.length < SEGMENT_HEADER_BYTES || buf.readUInt32LE(0) !== SEGMENT_MAGIC) return undefined
  if (crc32(buf.subarray(4, 12)) !== buf.readUInt32LE(12)) return undefined
  const seq = buf.readUInt32LE(4) + buf.readUInt32LE(8) * TWO_32
  return Number.isSafeInteger(seq) ? seq : undefined
}

const SEGMENT_NAME = /^seg-(\d{12})\.(log|ack)$/

/** `seg-000000000042.log`: records. */
export const segmentFileName = (id: number) => `seg-${String(id).padStart(12, '0')}.log`
/** `seg-000000000042.ack`: the acknowledgements of that segment's records (see ack-log.ts). */
export const ackFileName = (id: number) => `seg-${String(id).padStart(12, '0')}.ack`

export function parseFileName(name: string): { id: number; kind: 'log' | 'ack' } | undefined {
  const m = SEGMENT_NAME.exec(name)
  return m ? { id: Number(m[1]), kind: m[2] as 'log' | 'ack' } : undefined
}

/**
 * What memory keeps of one segment: which of its sequence numbers are held
 * (a bit each) and when each was received (a float64 each), never payloads.
 * Slot i stands for sequence number baseSeq + i; a record lost to damage
 * leaves its slot empty.
 */
export class SegmentIndex {
  /** Bytes of the segment file that are committed (synced, readable). */
  size = SEGMENT_HEADER_BYTES
  /** Bytes of its ack file. */
  ackBytes = 0
  /** Records held: written and not acknowledged. */
  held = 0
  private slots = 0
  private bits = new Uint8Array(16)
  private times = new Float64Array(128)
  /** No held slot lies below this one. */
  private firstHeld = 0

  constructor(
    readonly id: number,
    readonly baseSeq: number,
  ) {}

  /** The highest sequence number this segment has a slot for (baseSeq - 1 while empty). */
  get lastSeq(): number {
    return this.baseSeq + this.slots - 1
  }

  /** Adds a held record; `seq` must be above lastSeq. */
  add(seq: number, receivedAt: number): void {
    const slot = seq - this.baseSeq
    this.grow(slot + 1)
    this.slots = slot + 1
    this.bits[slot >> 3]! |= 1 << (slot & 7)
    this.times[slot] = receivedAt
    this.held++
  }

  has(seq: number): boolean {
    const slot = seq - this.baseSeq
    if (slot < 0 || slot >= this.slots) return false
    return (this.bits[slot >> 3]! & (1 << (slot & 7))) !== 0
  }

  /** Marks `seq` acknowledged; false if it was not held here. */
  release(seq: number): boolean {
    if (!this.has(seq)) return false
    const slot = seq - this.baseSeq
    this.bits[slot >> 3]! &= ~(1 << (slot & 7))
    this.held--
    return true
  }

  /** receivedAt of the oldest held record, or undefined. Amortized O(1): the head only moves forward. */
  oldestReceivedAt(): number | undefined {
    if (this.held === 0) return undefined
    while (!this.has(this.baseSeq + this.firstHeld)) this.firstHeld++
    return this.times[this.firstHeld]
  }

  /** Gives back the spare room of the growable arrays (for a segment that takes no more records). */
  trim(): void {
    this.bits = this.bits.slice(0, (this.slots + 7) >> 3)
    this.times = this.times.slice(0, this.slots)
  }

  /** Bytes of memory this index keeps in its arrays. */
  get memoryBytes(): number {
    return this.bits.byteLength + this.times.byteLength
  }

  private grow(slots: number): void {
    if (slots > this.times.length) {
      let capacity = Math.max(this.times.length, 64)
      while (capacity < slots) capacity *= 2
      const times = new Float64Array(capacity)
      times.set(this.times.subarray(0, this.slots))
      this.times = times
    }
    const bytes = (slots + 7) >> 3
    if (bytes > this.bits.length) {
      const bits = new Uint8Array(Math.max(bytes, this.bits.length * 2))
      bits.set(this.bits)
      this.bits = bits
    }
  }
}

/** The segment whose range holds `seq`, by binary search (bases rise with ids). */
export function findSegment(segments: ReadonlyArray<SegmentIndex>, seq: number): SegmentIndex | undefined {
  let lo = 0
  let hi = segments.length - 1
  let found: SegmentIndex | undefined
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    const s = segments[mid]!
    if (s.baseSeq <= seq) {
      found = s
      lo = mid + 1
    } else hi = mid - 1
  }
  return found
}
