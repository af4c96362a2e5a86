import { crc32 } from './crc32.js'
import type { DeviceLedger } from './device-ledger.js'

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

const MAX_TIME_OFFSET = 0xffffffff

/**
 * What memory keeps of one segment, never payloads: per record slot, its size in
 * the log (0: not held), its device's number in the DeviceLedger, and when it was
 * received as milliseconds after the segment's first record (clamped to 0 .. 2^32-1,
 * about 49 days): 10 bytes a record. Slot i stands for sequence number baseSeq + i;
 * a record lost to damage leaves its slot empty.
 */
export class SegmentIndex {
  /** Bytes of the segment file that are committed (synced, readable). */
  size = SEGMENT_HEADER_BYTES
  /** Bytes of its ack file. */
  ackBytes = 0
  /** Records held: written and not acknowledged. */
  held = 0
  private slots = 0
  private sizes = new Uint32Array(64)
  private devices = new Uint16Array(64)
  private times = new Uint32Array(64)
  /** receivedAt of the first record added; times are kept relative to it. */
  private timeBase = 0
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

  /** Adds a held record of `bytes` (at least 1) from device number `device`; `seq` must be above lastSeq. */
  add(seq: number, receivedAt: number, device: number, bytes: number): void {
    const slot = seq - this.baseSeq
    if (this.slots === 0) this.timeBase = receivedAt
    this.grow(slot + 1)
    this.slots = slot + 1
    this.sizes[slot] = bytes
    this.devices[slot] = device
    this.times[slot] = Math.min(MAX_TIME_OFFSET, Math.max(0, Math.round(receivedAt - this.timeBase)))
    this.held++
  }

  has(seq: number): boolean {
    const slot = seq - this.baseSeq
    if (slot < 0 || slot >= this.slots) return false
    return this.sizes[slot] !== 0
  }

  /** Marks `seq` acknowledged and takes it off its device in `ledger`; false if it was not held here. */
  release(seq: number, ledger: DeviceLedger): boolean {
    if (!this.has(seq)) return false
    const slot = seq - this.baseSeq
    ledger.remove(this.devices[slot]!, this.sizes[slot]!)
    this.sizes[slot] = 0
    this.held--
    return true
  }

  /** receivedAt of the oldest held record, or undefined. Amortized O(1): the head only moves forward. */
  oldestReceivedAt(): number | undefined {
    if (this.held === 0) return undefined
    while (!this.has(this.baseSeq + this.firstHeld)) this.firstHeld++
    return this.timeBase + this.times[this.firstHeld]!
  }

  /** Gives back the spare room of the growable arrays (for a segment that takes no more records). */
  trim(): void {
    this.sizes = this.sizes.slice(0, this.slots)
    this.devices = this.devices.slice(0, this.slots)
    this.times = this.times.slice(0, this.slots)
  }

  /** Bytes of memory this index keeps in its arrays. */
  get memoryBytes(): number {
    return this.sizes.byteLength + this.devices.byteLength + this.times.byteLength
  }

  private grow(slots: number): void {
    if (slots <= this.sizes.length) return
    let capacity = Math.max(this.sizes.length, 64)
    while (capacity < slots) capacity *= 2
    const sizes = new Uint32Array(capacity)
    sizes.set(this.sizes.subarray(0, this.slots))
    const devices = new Uint16Array(capacity)
    devices.set(this.devices.subarray(0, this.slots))
    const times = new Uint32Array(capacity)
    times.set(this.times.subarray(0, this.slots))
    this.sizes = sizes
    this.devices = devices
    this.times = times
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
