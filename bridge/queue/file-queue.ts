import { chmod, type FileHandle, mkdir, rm, statfs } from 'node:fs/promises'
import { join } from 'node:path'
import { Observable } from 'rxjs'
import { LogLimiter } from '../../core/log-limiter.js'
import type { UplinkMessage } from '../../gateway/uplink.js'
import { DeviceLedger, type DeviceUsage } from './device-ledger.js'
import { QueueError } from './errors.js'
import { Housekeeper } from './housekeeper.js'
import { createSegmentFile, DIR_MODE, writeFullySync } from './io.js'
import { type FileQueueOptions, type ResolvedOptions, resolveOptions } from './options.js'
import { noDrops, type QueueEntry, type QueueStats, type Refused, type UplinkQueue } from './queue.js'
import { type QueueLimits, refusal } from './quota.js'
import { LogReader, type LogView } from './reader.js'
import { encodeUnstamped, recordSize, stampRecord } from './record.js'
import { type RecoveryReport, recoverLog } from './recovery.js'
import { ackFileName, findSegment, SEGMENT_HEADER_BYTES, SegmentIndex, segmentFileName } from './segment.js'

export type { FileQueueOptions } from './options.js'
export type { RecoveryReport } from './recovery.js'

interface Pending {
  readonly message: UplinkMessage
  /** Its device's number in the ledger. */
  readonly device: number
  /** The record, all but its sequence number and checksum (stamped when written). */
  readonly record: Buffer
  readonly resolve: (entry: QueueEntry) => void
  readonly reject: (err: unknown) => void
}

/**
 * The durable uplink queue: an append-only log of segment files in one folder
 * (see record.ts for the record format, segment.ts for segments, ack-log.ts for
 * how acknowledgements are kept, recovery.ts for what happens at open, quota.ts
 * for the policy when full).
 *
 * Group commit: appends wait in a list while a write and fdatasync are under
 * way; the next round writes all of them with one write and one fdatasync. An
 * append resolves only after the fdatasync that covers it (durability `fsync`,
 * the default), or once its write returned (`write`: kept if the process dies,
 * not if the machine loses power; see options.ts). Memory keeps an
 * index (10 bytes per held message: size, device, time; see segment.ts), never
 * the backlog's payloads, and what each device holds (device-ledger.ts).
 *
 * Space comes back by whole segments: a segment all of whose records are
 * acknowledged is deleted; the active one too, once everything in it is
 * acknowledged and it has reached a quarter of segmentBytes (a new one is
 * started first, so the numbering survives a crash in between). If starting
 * it fails (a full disk), it is tried again after 1 s, doubling up to 30 s.
 *
 * One process at a time per folder: the queue takes no lock.
 */
export class FileQueue implements UplinkQueue {
  readonly store = 'disk' as const
  private readonly segments: SegmentIndex[]
  private readonly readers = new Set<LogReader>()
  private readonly limits: QueueLimits
  private readonly dropped = noDrops()
  private readonly view: LogView
  private pending: Pending[] = []
  /** Messages taken from `pending` and not yet committed or failed. */
  private writing = 0
  /** Bytes of `pending` and of what is being written, with the headers of the segments they will start. */
  private pendingBytes = 0
  /** The size the active segment will have once `pending` is written (to foresee segment starts). */
  private tail: number
  private held = 0
  /** Bytes of the files: segments and ack files. */
  private bytes = 0
  private nextSeq: number
  private draining: Promise<void> | undefined
  private drainRunning = false
  private readonly housekeeper: Housekeeper
  private closing: Promise<void> | undefined
  /** Id of the next segment file; an attempt that failed never gives its id again (its file may be left). */
  private nextId: number
  private counters = { fsyncs: 2, commits: 0, ioErrors: 0, reclaims: 0 }
  /** The active segment is all acknowledged and big enough: start a new one so its space comes back. */
  private reclaimWanted = false
  private reclaimTimer: NodeJS.Timeout | undefined
  private reclaimDelayMs = RECLAIM_RETRY_MS
  private readonly limiter = new LogLimiter()

  /**
   * Opens (or makes) the queue in `dir`: recovers what the log holds (see
   * recovery.ts; damage is reported, never a refusal to start), then starts a
   * new segment whose header carries the next sequence number.
   */
  static async open(
    dir: string,
    options: FileQueueOptions,
  ): Promise<{ queue: FileQueue; recovery: RecoveryReport }> {
    let resolved = resolveOptions(options)
    try {
      await mkdir(dir, { recursive: true, mode: DIR_MODE })
      await chmod(dir, DIR_MODE)
      const disk = await diskSize(dir)
      if (options.segmentBytes === undefined) resolved = resolveOptions(options, disk)
      const ledger = new DeviceLedger()
      const recovered = await recoverLog(dir, ledger)
      const segments = await removeAcknowledged(dir, recovered.segments)
      const nextSeq = Math.max(recovered.nextSeq, resolved.firstSeq)
      const handle = await createSegmentFile(dir, recovered.nextId, nextSeq)
      const active = new SegmentIndex(recovered.nextId, nextSeq)
      const queue = new FileQueue(dir, resolved, [...segments, active], handle, nextSeq, ledger, disk)
      for (const segment of segments) if (segment.held === 0) queue.removeSegment(segment)
      await queue.housekeeper.flush(false)
      return { queue, recovery: recovered.report }
    } catch (err) {
      if (err instanceof QueueError) throw err
      throw new QueueError('QUEUE_ERR_IO', `Cannot open the queue folder ${dir}`, { cause: err })
    }
  }

  private constructor(
    readonly dir: string,
    private readonly options: ResolvedOptions,
    /** Recovered segments, then the new active one. */
    segments: SegmentIndex[],
    private handle: FileHandle,
    nextSeq: number,
    private readonly ledger: DeviceLedger,
    /** The size of the filesystem the folder is on, when it could be told (statfs). */
    readonly diskBytes: number | undefined,
  ) {
    this.segments = segments
    this.nextSeq = nextSeq
    this.nextId = segments.at(-1)!.id + 1
    this.tail = SEGMENT_HEADER_BYTES
    for (const s of this.segments) {
      this.held += s.held
      this.bytes += s.size + s.ackBytes
    }
    this.limits = {
      maxMessages: options.maxMessages,
      quotaBytes: options.quotaBytes,
      qos0Bytes: Math.floor(options.quotaBytes * options.qos0Fraction),
      deviceShare: options.deviceShare,
    }
    this.housekeeper = new Housekeeper(
      dir,
      options.ackFlushMs,
      (bytes) => {
        this.bytes += bytes
      },
      options.logger,
    )
    this.view = {
      dir,
      segments,
      readAhead: options.readAhead,
      readAheadBytes: options.readAheadBytes,
      detach: (reader) => this.readers.delete(reader),
    }
  }

  get size(): number {
    return this.held
  }

  get capacity(): number {
    return this.options.maxMessages
  }

  /** The size at which segments end (options, or the default for the quota and the disk). */
  get segmentBytes(): number {
    return this.options.segmentBytes
  }

  /**
   * For tests and metrics: fsyncs (of records, new segments and the folder), commits (group writes),
   * ioErrors (failed writes, ack writes, deletions and segment starts), reclaims (fully acknowledged
   * active segments replaced), segments, indexBytes (memory of the index).
   */
  diagnostics(): {
    fsyncs: number
    commits: number
    ioErrors: number
    reclaims: number
    segments: number
    indexBytes: number
  } {
    let indexBytes = 0
    for (const s of this.segments) indexBytes += s.memoryBytes
    const ioErrors = this.counters.ioErrors + this.housekeeper.errors
    return { ...this.counters, ioErrors, segments: this.segments.length, indexBytes }
  }

  append(message: UplinkMessage): Promise<QueueEntry | undefined> {
    return this.tryAppend(message).then((result) => ('refused' in result ? undefined : result))
  }

  tryAppend(message: UplinkMessage): Promise<QueueEntry | Refused> {
    if (this.closing) {
      return Promise.reject(new QueueError('QUEUE_ERR_CLOSED', `The queue in ${this.dir} is closed`))
    }
    let record: Buffer
    let device: number
    try {
      const size = recordSize(message)
      const starts = this.tail > SEGMENT_HEADER_BYTES && this.tail + size > this.options.segmentBytes
      const cost = size + (starts ? SEGMENT_HEADER_BYTES : 0)
      const occupancy = {
        messages: this.held + this.pending.length + this.writing,
        bytes: this.bytes + this.pendingBytes,
      }
      const holds = this.ledger.usage(message.deviceId)
      const reason = refusal(message.qos, size, cost, occupancy, holds, this.limits)
      if (reason) {
        this.dropped[reason]++
        return Promise.resolve({ refused: reason, device: holds })
      }
      record = Buffer.allocUnsafe(size)
      encodeUnstamped(record, 0, message, size)
      device = this.ledger.intern(message.deviceId)
      this.ledger.add(device, size)
      this.tail = (starts ? SEGMENT_HEADER_BYTES : this.tail) + size
      this.pendingBytes += cost
    } catch (err) {
      return Promise.reject(err)
    }
    return new Promise((resolve, reject) => {
      this.pending.push({ message, device, record, resolve, reject })
      this.kick()
    })
  }

  usage(deviceId: string): DeviceUsage {
    return this.ledger.usage(deviceId)
  }

  devices(top: number): { holding: number; top: Array<{ device: string } & DeviceUsage> } {
    return { holding: this.ledger.devices, top: this.ledger.top(top) }
  }

  ack(seq: number): void {
    if (this.closing || !Number.isSafeInteger(seq)) return
    const segment = findSegment(this.segments, seq)
    if (!segment?.release(seq, this.ledger)) return
    this.held--
    for (const reader of this.readers) reader.acked(seq)
    if (segment.held === 0 && segment !== this.segments.at(-1)) this.removeSegment(segment)
    else {
      this.housekeeper.acked(segment, seq)
      if (segment.held === 0 && this.worthReclaiming()) {
        this.reclaimWanted = true
        this.kick()
      }
    }
  }

  read(): Observable<QueueEntry> {
    return new Observable<QueueEntry>((subscriber) => {
      if (this.closing) {
        subscriber.complete()
        return
      }
      const reader = new LogReader(this.view, subscriber)
      this.readers.add(reader)
      return () => reader.stop(false)
    })
  }

  stats(): QueueStats {
    const oldest = this.segments.find((s) => s.held > 0)?.oldestReceivedAt()
    return {
      depth: this.held,
      bytes: this.bytes + this.pendingBytes,
      ...(oldest !== undefined && { oldestReceivedAt: oldest }),
      dropped: { ...this.dropped },
    }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      clearTimeout(this.reclaimTimer)
      for (const reader of [...this.readers]) reader.stop(true)
      await this.draining
      await this.housekeeper.close()
      await this.handle.close()
    })()
    return this.closing
  }

  /** Starts the write loop unless it runs: appends, then a reclaim when one is wanted. */
  private kick(): void {
    if (this.drainRunning) return
    // From a microtask, so that appends issued in the same tick go in the first write too.
    this.drainRunning = true
    this.draining = Promise.resolve().then(() => this.drain())
  }

  private async drain(): Promise<void> {
    try {
      for (;;) {
        if (this.pending.length > 0) {
          const batch = this.pending
          this.pending = []
          this.writing = batch.length
          let i = 0
          while (i < batch.length) i = await this.writeRun(batch, i)
          this.writing = 0
        } else if (this.reclaimWanted) {
          this.reclaimWanted = false
          await this.reclaim()
        } else break
      }
    } finally {
      this.drainRunning = false
      // Idle: the forecast meets the facts again (they differ only after a failed write).
      this.tail = this.segments.at(-1)!.size
      this.pendingBytes = 0
    }
  }

  /** Writes and syncs as many records of `batch` from `i` as the active segment takes; returns where it stopped. */
  private async writeRun(batch: Pending[], i: number): Promise<number> {
    let segment = this.segments.at(-1)!
    const firstBytes = batch[i]!.record.length
    if (segment.size > SEGMENT_HEADER_BYTES && segment.size + firstBytes > this.options.segmentBytes) {
      try {
        segment = await this.roll()
      } catch (err) {
        return this.fail(batch, i, batch.length, err)
      }
    }
    let end = segment.size + firstBytes
    let j = i + 1
    while (j < batch.length && end + batch[j]!.record.length <= this.options.segmentBytes) {
      end += batch[j]!.record.length
      j++
    }
    const start = segment.size
    const buf = Buffer.allocUnsafe(end - start)
    const firstSeq = this.nextSeq
    for (let k = i, pos = 0; k < j; k++) {
      const { record } = batch[k]!
      record.copy(buf, pos)
      stampRecord(buf, pos, record.length, firstSeq + k - i)
      pos += record.length
    }
    try {
      this.writeAt(buf, start)
      if (this.options.durability === 'fsync') {
        await this.handle.datasync()
        this.counters.fsyncs++
      }
    } catch (err) {
      await this.handle.truncate(start).catch(() => {})
      return this.fail(batch, i, j, err)
    }
    // Committed: index, account, then hand each entry to the live readers and to its caller, in order.
    this.counters.commits++
    this.nextSeq = firstSeq + (j - i)
    for (let k = i; k < j; k++) {
      const { message, device, record } = batch[k]!
      segment.add(firstSeq + k - i, message.receivedAt, device, record.length)
    }
    segment.size = end
    this.held += j - i
    this.bytes += buf.length
    this.pendingBytes -= buf.length
    this.writing -= j - i
    for (let k = i, at = start; k < j; k++) {
      const { message, record, resolve } = batch[k]!
      const entry: QueueEntry = { seq: firstSeq + k - i, message }
      at += record.length
      for (const reader of this.readers) reader.committed(segment, entry, at, record.length)
      resolve(entry)
    }
    return j
  }

  /** Writes a commit's records into the active segment, on this thread (io.ts, writeFullySync). */
  private writeAt(buf: Buffer, position: number): void {
    writeFullySync(this.handle, buf, position)
  }

  /** Rejects batch[i..j): not written, not held, their sequence numbers given out again. */
  private fail(batch: Pending[], i: number, j: number, cause: unknown): number {
    this.counters.ioErrors++
    const err = new QueueError('QUEUE_ERR_IO', `Cannot write the queue in ${this.dir}`, { cause })
    for (let k = i; k < j; k++) {
      const { record, device, reject } = batch[k]!
      this.pendingBytes -= record.length
      this.ledger.remove(device, record.length)
      reject(err)
    }
    this.writing -= j - i
    return j
  }

  /**
   * Starts the next segment; the one before is deleted if nothing in it is held.
   * A failed start leaves the active segment as it was; the next append tries
   * again with a new id.
   */
  private async roll(): Promise<SegmentIndex> {
    const old = this.segments.at(-1)!
    const id = this.nextId++
    const handle = await createSegmentFile(this.dir, id, this.nextSeq)
    this.counters.fsyncs += 2
    const segment = new SegmentIndex(id, this.nextSeq)
    const previous = this.handle
    this.handle = handle
    this.segments.push(segment)
    this.bytes += SEGMENT_HEADER_BYTES
    this.pendingBytes = Math.max(0, this.pendingBytes - SEGMENT_HEADER_BYTES)
    old.trim()
    await previous.close().catch(() => {})
    if (old.held === 0) this.removeSegment(old)
    return segment
  }

  /** Whether the active segment holds nothing and has grown enough to be worth replacing. */
  private worthReclaiming(): boolean {
    const active = this.segments.at(-1)!
    return (
      !this.closing &&
      active.held === 0 &&
      this.pending.length === 0 &&
      this.writing === 0 &&
      active.size - SEGMENT_HEADER_BYTES >= this.options.segmentBytes / 4
    )
  }

  /**
   * The active segment is all acknowledged: start a new one, which deletes it, so its space
   * comes back even when nothing more is appended (a full disk). Runs in the write loop.
   */
  private async reclaim(): Promise<void> {
    if (!this.worthReclaiming()) return
    try {
      await this.roll()
      this.counters.reclaims++
      this.reclaimDelayMs = RECLAIM_RETRY_MS
    } catch (err) {
      this.counters.ioErrors++
      const retryInMs = this.reclaimDelayMs
      this.reclaimDelayMs = Math.min(RECLAIM_RETRY_MAX_MS, retryInMs * 2)
      const take = this.limiter.take('reclaim')
      const cause = err as NodeJS.ErrnoException
      if (take) {
        this.options.logger?.warn(
          {
            work: 'segment_reclaim',
            dir: this.dir,
            code: cause?.code,
            errno: cause?.errno,
            err: cause,
            retryInMs,
            ...(take.suppressed > 0 && { suppressed: take.suppressed }),
          },
          `queue segment not replaced (${cause?.code ?? cause?.message}): the acknowledged active segment keeps its space; trying again in ${retryInMs} ms`,
        )
      }
      clearTimeout(this.reclaimTimer)
      this.reclaimTimer = setTimeout(() => {
        this.reclaimTimer = undefined
        if (!this.worthReclaiming()) return
        this.reclaimWanted = true
        this.kick()
      }, retryInMs)
      this.reclaimTimer.unref()
    }
  }

  /** Compaction by whole segments: all of `segment` is acknowledged, so its files go. */
  private removeSegment(segment: SegmentIndex): void {
    const i = this.segments.indexOf(segment)
    if (i === -1) return
    this.segments.splice(i, 1)
    this.bytes -= segment.size + segment.ackBytes
    this.housekeeper.remove(segment)
  }
}

const RECLAIM_RETRY_MS = 1000
const RECLAIM_RETRY_MAX_MS = 30_000

/** The size of the filesystem `dir` is on, or undefined when it cannot be told. */
async function diskSize(dir: string): Promise<number | undefined> {
  try {
    const fs = await statfs(dir)
    const bytes = fs.blocks * fs.bsize
    return bytes > 0 ? bytes : undefined
  } catch {
    return undefined
  }
}

/**
 * Deletes the files of recovered segments all of whose records are acknowledged, but the
 * newest (it keeps the numbering until the new segment is made), before the new segment is
 * made: on a full disk that is the room it needs. Returns the segments left; one whose
 * files could not be deleted stays, for the housekeeper to try again.
 */
async function removeAcknowledged(dir: string, segments: SegmentIndex[]): Promise<SegmentIndex[]> {
  const newest = segments.at(-1)
  const left: SegmentIndex[] = []
  for (const segment of segments) {
    if (segment.held > 0 || segment === newest) {
      left.push(segment)
      continue
    }
    try {
      await rm(join(dir, segmentFileName(segment.id)), { force: true })
      await rm(join(dir, ackFileName(segment.id)), { force: true })
    } catch {
      left.push(segment)
    }
  }
  return left
}
