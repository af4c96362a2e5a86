import { type FileHandle, open } from 'node:fs/promises'
import { join } from 'node:path'
import type { Subscriber } from 'rxjs'
import { QueueError } from './errors.js'
import type { QueueEntry } from './queue.js'
import { decodeMessage, findNextRecord, frameAt, recordSeq } from './record.js'
import { SEGMENT_HEADER_BYTES, type SegmentIndex, segmentFileName } from './segment.js'

/** What a reader sees of the log it reads. */
export interface LogView {
  readonly dir: string
  /** Segments in order; the last is the one being written. */
  readonly segments: ReadonlyArray<SegmentIndex>
  readonly readAhead: number
  readonly readAheadBytes: number
  detach(reader: LogReader): void
}

const CHUNK_BYTES = 64 * 1024

/**
 * One subscriber of FileQueue.read(): a cursor (segment, byte offset) that
 * starts at the oldest segment and moves forward.
 * - disk: reads the segment files in 64 KiB chunks, emitting held records in
 *   order and skipping acknowledged ones, until it reaches the committed end of
 *   the newest segment;
 * - live: then it takes each record as it is committed;
 * - paused: when `readAhead` entries (or `readAheadBytes`) it emitted are not
 *   yet acknowledged, it stops; once half of them are, it reads on from the
 *   disk where it stopped. So a consumer that buffers (mergeMap with a window)
 *   holds at most the read-ahead in memory, however long the backlog.
 */
export class LogReader {
  private segmentId: number
  private offset = SEGMENT_HEADER_BYTES
  private lastSeq = -1
  private mode: 'disk' | 'live' | 'paused' | 'done' = 'disk'
  private readonly outstanding = new Map<number, number>()
  private outstandingBytes = 0
  private pumping = false
  private need = 0
  private handle: FileHandle | undefined
  private handleId = -1
  /**
   * Live entries taken at commit, handed on in the event loop's next check phase (`flushLive`,
   * scheduled by the entry that finds the list empty).
   */
  private live: QueueEntry[] = []

  constructor(
    private readonly view: LogView,
    private readonly subscriber: Subscriber<QueueEntry>,
  ) {
    this.segmentId = view.segments[0]?.id ?? 0
    queueMicrotask(() => void this.pump())
  }

  /** A record was committed to `segment`, ending at byte `end`. */
  committed(segment: SegmentIndex, entry: QueueEntry, end: number, bytes: number): void {
    if (this.mode !== 'live' || entry.seq <= this.lastSeq) return
    if (!this.windowOpen()) {
      this.mode = 'paused'
      return
    }
    this.segmentId = segment.id
    this.offset = end
    if (!segment.has(entry.seq)) return
    // Taken now (cursor, window), handed on after the commit's callers resumed: the appends'
    // continuations (the LAN PUBACKs of a group commit) are written before the uplink seals,
    // signs and publishes these entries, so a device's round trip does not wait on the cloud's.
    this.take(entry, bytes)
    if (this.live.push(entry) === 1) setImmediate(this.flushLive)
  }

  /** `seq` was acknowledged. */
  acked(seq: number): void {
    const bytes = this.outstanding.get(seq)
    if (bytes === undefined) return
    this.outstanding.delete(seq)
    this.outstandingBytes -= bytes
    if (
      this.mode === 'paused' &&
      this.outstanding.size <= this.view.readAhead / 2 &&
      this.outstandingBytes <= this.view.readAheadBytes / 2
    ) {
      this.mode = 'disk'
      queueMicrotask(() => void this.pump())
    }
  }

  /** Ends the reader: on unsubscribe, or with `complete` when the queue closes. */
  stop(complete: boolean): void {
    if (this.mode === 'done') return
    this.mode = 'done'
    // Entries taken and not yet handed on stay in the log, for the next reader.
    this.live = []
    this.view.detach(this)
    if (!this.pumping) this.closeHandle()
    if (complete) this.subscriber.complete()
  }

  private windowOpen(): boolean {
    return this.outstanding.size < this.view.readAhead && this.outstandingBytes < this.view.readAheadBytes
  }

  private take(entry: QueueEntry, bytes: number): void {
    this.lastSeq = entry.seq
    this.outstanding.set(entry.seq, bytes)
    this.outstandingBytes += bytes
  }

  /** Emits from the disk; live entries taken before it go first, so the order stays the log's. */
  private emit(entry: QueueEntry, bytes: number): void {
    this.take(entry, bytes)
    if (this.live.length > 0) this.flushLive()
    this.subscriber.next(entry)
  }

  private readonly flushLive = (): void => {
    const live = this.live
    if (live.length === 0) return
    this.live = []
    for (const entry of live) {
      if (this.mode === 'done') return
      this.subscriber.next(entry)
    }
  }

  private async pump(): Promise<void> {
    if (this.pumping) return
    this.pumping = true
    try {
      while (this.mode === 'disk') {
        if (!this.windowOpen()) {
          this.mode = 'paused'
          break
        }
        const segments = this.view.segments
        const segment = segments.find((s) => s.id >= this.segmentId)
        if (!segment) break
        if (segment.id !== this.segmentId) {
          this.segmentId = segment.id
          this.offset = SEGMENT_HEADER_BYTES
        }
        if (this.offset >= segment.size) {
          if (segment === segments[segments.length - 1]) {
            // Caught up, in the same tick as the size was read: no commit can slip between.
            this.mode = 'live'
            break
          }
          this.segmentId = segment.id + 1
          this.offset = SEGMENT_HEADER_BYTES
          continue
        }
        if (segment.held === 0) {
          this.offset = segment.size
          continue
        }
        const handle = await this.open(segment)
        if (!handle || this.mode !== 'disk') continue
        const length = Math.min(Math.max(CHUNK_BYTES, this.need), segment.size - this.offset)
        const buf = Buffer.allocUnsafe(length)
        const { bytesRead } = await handle.read(buf, 0, length, this.offset)
        if (this.mode !== 'disk' || this.segmentId !== segment.id) continue
        if (bytesRead === 0) {
          // The file is shorter than committed: nothing more to read in it.
          this.offset = segment.size
          continue
        }
        this.consume(segment, buf.subarray(0, bytesRead), bytesRead < length)
      }
    } catch (err) {
      if (this.mode !== 'done') {
        this.mode = 'done'
        this.view.detach(this)
        this.subscriber.error(
          new QueueError('QUEUE_ERR_IO', `Cannot read the queue folder ${this.view.dir}`, { cause: err }),
        )
      }
    } finally {
      this.pumping = false
      // Only disk mode reads files: a live or paused reader lets go of its segment, which may be
      // acknowledged and deleted meanwhile (an open file keeps its space on a small disk).
      if (this.mode !== 'disk') this.closeHandle()
    }
  }

  /** Emits the held records of `buf` (read at this.offset of `segment`) and moves the cursor past them. */
  private consume(segment: SegmentIndex, buf: Buffer, fileEnds: boolean): void {
    const start = this.offset
    const limit = fileEnds ? buf.length : segment.size - start
    this.need = 0
    let pos = 0
    while (pos < buf.length && this.mode === 'disk') {
      const frame = frameAt(buf, pos)
      if (frame.status === 'short' && frame.need <= limit - pos) {
        // A record that goes on past this chunk: read again from its start.
        if (pos === 0) this.need = frame.need
        break
      }
      if (frame.status === 'ok') {
        const seq = recordSeq(buf, pos)
        this.offset = start + frame.end
        if (seq > this.lastSeq && segment.has(seq)) {
          const entry: QueueEntry = { seq, message: decodeMessage(buf, pos, frame.end) }
          this.emit(entry, frame.end - pos)
          if (this.mode === 'disk' && !this.windowOpen()) this.mode = 'paused'
        }
        pos = frame.end
        continue
      }
      // Damage (recovery reported it at open): go to the next record marker, or near the chunk's end.
      const next = findNextRecord(buf, pos + 1, buf.length, true)
      pos = next === -1 ? Math.max(pos + 1, buf.length - 3) : next
      this.offset = start + pos
    }
  }

  private async open(segment: SegmentIndex): Promise<FileHandle | undefined> {
    if (this.handle && this.handleId === segment.id) return this.handle
    this.closeHandle()
    try {
      this.handle = await open(join(this.view.dir, segmentFileName(segment.id)), 'r')
      this.handleId = segment.id
      return this.handle
    } catch (err) {
      // Deleted meanwhile: all its records were acknowledged. Move on.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      if (this.segmentId === segment.id) this.offset = Number.POSITIVE_INFINITY
      return undefined
    }
  }

  private closeHandle(): void {
    const handle = this.handle
    this.handle = undefined
    this.handleId = -1
    if (handle) void handle.close().catch(() => {})
  }
}
