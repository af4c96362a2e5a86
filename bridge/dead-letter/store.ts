import { chmod, type FileHandle, mkdir, open, readFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { Observable } from 'rxjs'
import { LogLimiter } from '../../core/log-limiter.js'
import type { Logger } from '../../core/logger.js'
import { QueueError } from '../queue/errors.js'
import { DIR_MODE, FILE_MODE, syncDir, writeFully } from '../queue/io.js'
import type { QueueEntry } from '../queue/queue.js'
import { decodeMessage } from '../queue/record.js'
import {
  DEAD_LETTER_REASONS,
  type DeadLetterReason,
  encodeChange,
  encodeLetter,
  type LetterChange,
  type LetterState,
  letterOf,
  parseLog,
  replay,
} from './format.js'
import {
  type DeadLetterRequest,
  pendingRequests,
  readRequest,
  removeRequest,
  requestsDir,
} from './requests.js'

export const DEAD_LETTER_LOG = 'dead-letter.log'

/** The gateway keeps its dead letters in `<stateDir>/dead-letter`. */
export function deadLetterDir(stateDir: string): string {
  return join(stateDir, 'dead-letter')
}

export interface DeadLetterStoreOptions {
  /** Bytes the log may take (letters, and state changes until compaction). */
  quotaBytes: number
  /** Letters held at most (memory keeps a few dozen bytes each). Default 100,000. */
  maxLetters?: number
  logger: Logger
  /** How often the folder is looked at for operator requests; default 1,000 ms. */
  requestPollMs?: number
}

export interface DeadLetterStats {
  /** Letters held or being retried. */
  depth: number
  /** Of those, the ones the bridge is sending again. */
  retrying: number
  /** Bytes of the dead-letter log (letters, and state changes until compaction). */
  bytes: number
  quotaBytes: number
  /** Letters held or retrying, by the reason they were (last) set aside; every reason is present. */
  byReason: Record<DeadLetterReason, number>
}

export interface DeadLetterOpenReport {
  letters: number
  retrying: number
  /** Bytes cut from the end of the log: an entry torn by a crash or power loss mid-write. */
  tornBytes: number
  /** Damaged stretches skipped between valid entries. */
  damaged: number
}

/** What a request did: the letters it changed, and the gw-seqs it named that are not dead letters. */
export interface RequestOutcome {
  changed: number[]
  unknown: number[]
}

interface Pending {
  buf: Buffer
  commit: (offset: number) => void
  resolve: () => void
  reject: (err: unknown) => void
}

/**
 * The dead letters: queued messages the bridge must not send as they are (see
 * DeadLetterReason), held aside in one append-only log (format.ts) in their own
 * folder, bounded by `quotaBytes` and `maxLetters`, until an operator retries
 * (the bridge sends them again, with their gw-seq) or drops them. Every change is
 * written and fdatasync'd before it counts (group commit: changes that arrive
 * during a sync share the next); all file work runs one operation after another.
 * Resolved letters are removed by compaction (a rewrite and a rename), at open and
 * when they make up half of the log.
 */
export class DeadLetterStore {
  private readonly path: string
  private size: number
  private pendingBytes = 0
  private pending: Pending[] = []
  private flushQueued = false
  private chain: Promise<void> = Promise.resolve()
  private readonly retryListeners = new Set<(entries: QueueEntry[]) => void>()
  /** Told when a letter is held again (set aside anew), so that a later retry emits it again. */
  private readonly heldAgain = new Set<(seq: number) => void>()
  private readonly limiter = new LogLimiter()
  private readonly maxLetters: number
  private timer: NodeJS.Timeout | undefined
  private polling = false
  private closed = false

  static async open(
    dir: string,
    options: DeadLetterStoreOptions,
  ): Promise<{ store: DeadLetterStore; report: DeadLetterOpenReport }> {
    try {
      await mkdir(requestsDir(dir), { recursive: true, mode: DIR_MODE })
      await chmod(dir, DIR_MODE)
      const path = join(dir, DEAD_LETTER_LOG)
      let buf: Buffer
      try {
        buf = await readFile(path)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
        buf = Buffer.alloc(0)
      }
      const parsed = parseLog(buf)
      const handle = await open(path, buf.length === 0 ? 'w+' : 'r+', FILE_MODE)
      if (parsed.validBytes < buf.length) {
        await handle.truncate(parsed.validBytes)
        await handle.datasync()
      }
      const state = replay(parsed.entries)
      const store = new DeadLetterStore(
        dir,
        options,
        handle,
        parsed.validBytes,
        state.letters,
        state.garbageBytes,
      )
      if (state.garbageBytes > 0) await store.run(() => store.compact())
      await store.pollRequests()
      store.timer = setInterval(() => void store.pollRequests(), options.requestPollMs ?? 1000)
      store.timer.unref()
      const stats = store.stats()
      return {
        store,
        report: {
          letters: stats.depth,
          retrying: stats.retrying,
          tornBytes: buf.length - parsed.validBytes,
          damaged: parsed.damaged,
        },
      }
    } catch (err) {
      if (err instanceof QueueError) throw err
      throw new QueueError('QUEUE_ERR_IO', `Cannot open the dead-letter folder ${dir}`, { cause: err })
    }
  }

  private constructor(
    readonly dir: string,
    private readonly options: DeadLetterStoreOptions,
    private handle: FileHandle,
    size: number,
    private letters: Map<number, LetterState>,
    private garbageBytes: number,
  ) {
    this.path = join(dir, DEAD_LETTER_LOG)
    this.size = size
    this.maxLetters = options.maxLetters ?? 100_000
  }

  has(seq: number): boolean {
    return this.letters.has(seq)
  }

  /**
   * Holds `entry` aside for `reason`, durably: resolves 'held' once it is synced
   * (the queue may forget it then), or 'full' when the quota or maxLetters leaves no
   * room. A letter already held (a retried one that still cannot go) just takes
   * the new reason. Rejects (QUEUE_ERR_IO) when the log cannot be written.
   */
  async add(entry: QueueEntry, reason: DeadLetterReason, detail: string): Promise<'held' | 'full'> {
    if (this.closed) throw new QueueError('QUEUE_ERR_CLOSED', `The dead letters in ${this.dir} are closed`)
    const known = this.letters.get(entry.seq)
    if (known) {
      if (known.state === 'held' && known.reason === reason) return 'held'
      await this.change(entry.seq, reason, detail)
      return 'held'
    }
    const buf = encodeLetter(entry, reason, detail, Date.now())
    if (!this.fits(buf.length) && this.garbageBytes > 0) {
      await this.run(() => this.compact()).catch((cause: unknown) => {
        throw new QueueError('QUEUE_ERR_IO', `Cannot compact the dead letters in ${this.dir}`, { cause })
      })
    }
    if (!this.fits(buf.length)) return 'full'
    await this.append(buf, (offset) => {
      const detailBytes = buf.readUInt16LE(30)
      this.letters.set(entry.seq, {
        seq: entry.seq,
        reason,
        detail,
        state: 'held',
        since: buf.readDoubleLE(22),
        offset,
        length: buf.length,
        record: { start: offset + 32 + detailBytes, end: offset + buf.length },
      })
    })
    return 'held'
  }

  /** A retried letter was delivered: it is gone. (One the cloud refused again is held again: `add`.) */
  settle(seq: number): Promise<void> {
    if (this.closed || !this.letters.has(seq)) return Promise.resolve()
    return this.change(seq, 'delivered', '').then(
      () => this.tidy(),
      (err: unknown) => this.logFailure('settle', err, { seq }),
    )
  }

  /**
   * Emits each letter being retried: on subscribe every one that is, then each one
   * a request retries. The bridge sends them like queued messages, with their gw-seq.
   */
  retries(): Observable<QueueEntry> {
    return new Observable<QueueEntry>((subscriber) => {
      const seen = new Set<number>()
      const emit = (entries: QueueEntry[]) => {
        for (const e of entries) {
          if (seen.has(e.seq)) continue
          seen.add(e.seq)
          subscriber.next(e)
        }
      }
      const forget = (seq: number) => seen.delete(seq)
      this.retryListeners.add(emit)
      this.heldAgain.add(forget)
      const retrying = [...this.letters.values()].filter((l) => l.state === 'retrying').map((l) => l.seq)
      if (retrying.length > 0) {
        this.read(retrying).then(emit, (err: unknown) => subscriber.error(err))
      }
      return () => {
        this.retryListeners.delete(emit)
        this.heldAgain.delete(forget)
      }
    })
  }

  /** Applies an operator request (retry or drop). */
  async apply(request: DeadLetterRequest): Promise<RequestOutcome> {
    const named = request.all
      ? [...this.letters.keys()].filter(
          (seq) => !request.reason || this.letters.get(seq)?.reason === request.reason,
        )
      : [...new Set(request.seqs ?? [])]
    const unknown = named.filter((seq) => !this.letters.has(seq))
    const changed: number[] = []
    for (const seq of named.sort((a, b) => a - b)) {
      const letter = this.letters.get(seq)
      if (!letter) continue
      if (request.action === 'retry' && letter.state === 'retrying') continue
      await this.change(seq, request.action === 'retry' ? 'retrying' : 'dropped', 'operator request')
      changed.push(seq)
    }
    if (request.action === 'retry' && changed.length > 0) {
      const entries = await this.read(changed)
      for (const listener of this.retryListeners) listener(entries)
    }
    await this.tidy()
    return { changed, unknown }
  }

  stats(): DeadLetterStats {
    const byReason = Object.fromEntries(DEAD_LETTER_REASONS.map((r) => [r, 0])) as Record<
      DeadLetterReason,
      number
    >
    let retrying = 0
    for (const letter of this.letters.values()) {
      byReason[letter.reason]++
      if (letter.state === 'retrying') retrying++
    }
    return {
      depth: this.letters.size,
      retrying,
      bytes: this.size + this.pendingBytes,
      quotaBytes: this.options.quotaBytes,
      byReason,
    }
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.timer)
    await this.chain
    await this.handle.close().catch(() => undefined)
  }

  /** Takes the operator requests waiting in the folder, applies each and removes it. */
  private async pollRequests(): Promise<void> {
    if (this.polling || this.closed) return
    this.polling = true
    try {
      for (const name of await pendingRequests(this.dir)) {
        if (this.closed) break
        const request = await readRequest(this.dir, name)
        if (typeof request === 'string') {
          this.options.logger.warn(
            { request: name, problem: request },
            `dead-letter request ignored: ${request}`,
          )
        } else {
          const outcome = await this.apply(request)
          this.options.logger.info(
            { request: name, action: request.action, ...outcome, ...this.stats() },
            `dead letters ${request.action === 'retry' ? 'retried' : 'dropped'} on operator request: ${outcome.changed.length}`,
          )
        }
        await removeRequest(this.dir, name)
      }
    } catch (err) {
      this.logFailure('request', err, {})
    } finally {
      this.polling = false
    }
  }

  private fits(bytes: number): boolean {
    return (
      this.letters.size < this.maxLetters && this.size + this.pendingBytes + bytes <= this.options.quotaBytes
    )
  }

  private async change(seq: number, change: LetterChange, detail: string): Promise<void> {
    const buf = encodeChange(seq, change, detail, Date.now())
    await this.append(buf, () => {
      const letter = this.letters.get(seq)
      this.garbageBytes += buf.length
      if (!letter) return
      if (change === 'dropped' || change === 'delivered') {
        this.letters.delete(seq)
        this.garbageBytes += letter.length
      } else if (change === 'retrying') letter.state = 'retrying'
      else {
        letter.state = 'held'
        letter.reason = change
        letter.detail = detail
        for (const forget of this.heldAgain) forget(seq)
      }
    })
  }

  /** Compacts when resolved letters make up half the log, or the log holds nothing live. */
  private async tidy(): Promise<void> {
    const worth = this.garbageBytes > 0 && (this.letters.size === 0 || this.garbageBytes * 2 >= this.size)
    if (!worth || this.closed) return
    await this.run(() => this.compact()).catch((err: unknown) => this.logFailure('compact', err, {}))
  }

  /** Queues `buf` for the next group write; resolves once it is synced and `commit` ran with its offset. */
  private append(buf: Buffer, commit: (offset: number) => void): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ buf, commit, resolve, reject })
      this.pendingBytes += buf.length
      if (!this.flushQueued) {
        this.flushQueued = true
        void this.run(() => this.flush())
      }
    })
  }

  private async flush(): Promise<void> {
    this.flushQueued = false
    const batch = this.pending
    this.pending = []
    if (batch.length === 0) return
    const buf = batch.length === 1 ? batch[0]!.buf : Buffer.concat(batch.map((p) => p.buf))
    const start = this.size
    try {
      await writeFully(this.handle, buf, start)
      await this.handle.datasync()
    } catch (cause) {
      this.pendingBytes -= buf.length
      await this.handle.truncate(start).catch(() => undefined)
      const err = new QueueError('QUEUE_ERR_IO', `Cannot write the dead letters in ${this.dir}`, { cause })
      for (const p of batch) p.reject(err)
      return
    }
    this.size += buf.length
    this.pendingBytes -= buf.length
    let at = start
    for (const p of batch) {
      p.commit(at)
      at += p.buf.length
      p.resolve()
    }
  }

  /** Reads the letters `seqs` (those still live) back as queue entries. */
  private read(seqs: number[]): Promise<QueueEntry[]> {
    return this.run(async () => {
      const entries: QueueEntry[] = []
      for (const seq of [...seqs].sort((a, b) => a - b)) {
        const letter = this.letters.get(seq)
        if (!letter) continue
        const { start, end } = letter.record
        const buf = Buffer.allocUnsafe(end - start)
        const { bytesRead } = await this.handle.read(buf, 0, buf.length, start)
        if (bytesRead !== buf.length) throw new Error(`dead letter ${seq}: short read`)
        entries.push({ seq, message: decodeMessage(buf, 0, buf.length) })
      }
      return entries
    }).catch((cause: unknown) => {
      throw new QueueError('QUEUE_ERR_IO', `Cannot read the dead letters in ${this.dir}`, { cause })
    })
  }

  /** Rewrites the log with only the live letters (their current reason and state), then renames it into place. */
  private async compact(): Promise<void> {
    const old = Buffer.allocUnsafe(this.size)
    const { bytesRead } = await this.handle.read(old, 0, this.size, 0)
    if (bytesRead !== this.size) throw new Error('short read of the dead-letter log')
    const parts: Buffer[] = []
    const letters = new Map<number, LetterState>()
    let size = 0
    let garbage = 0
    const now = Date.now()
    for (const letter of [...this.letters.values()].sort((a, b) => a.seq - b.seq)) {
      const record = old.subarray(letter.record.start, letter.record.end)
      const buf = letterOf(record, letter.seq, letter.reason, letter.detail, letter.since)
      const detailBytes = buf.readUInt16LE(30)
      letters.set(letter.seq, {
        ...letter,
        offset: size,
        length: buf.length,
        record: { start: size + 32 + detailBytes, end: size + buf.length },
      })
      parts.push(buf)
      size += buf.length
      if (letter.state === 'retrying') {
        const mark = encodeChange(letter.seq, 'retrying', 'operator request', now)
        parts.push(mark)
        size += mark.length
        garbage += mark.length
      }
    }
    const tmp = `${this.path}.tmp`
    const out = await open(tmp, 'w', FILE_MODE)
    try {
      await writeFully(out, Buffer.concat(parts), 0)
      await out.datasync()
    } finally {
      await out.close()
    }
    await rename(tmp, this.path)
    await syncDir(this.dir)
    const previous = this.handle
    this.handle = await open(this.path, 'r+', FILE_MODE)
    await previous.close().catch(() => undefined)
    this.letters = letters
    this.size = size
    this.garbageBytes = garbage
  }

  /** Runs `task` after all file work before it. */
  private run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.chain.then(task)
    this.chain = result.then(
      () => undefined,
      () => undefined,
    )
    return result
  }

  private logFailure(what: string, err: unknown, fields: Record<string, unknown>): void {
    const take = this.limiter.take(what)
    if (!take) return
    const cause = (err as { cause?: NodeJS.ErrnoException }).cause ?? (err as NodeJS.ErrnoException)
    this.options.logger.warn(
      {
        ...fields,
        err,
        code: cause?.code,
        dir: this.dir,
        ...(take.suppressed > 0 && { suppressed: take.suppressed }),
      },
      `dead letters: ${what} failed: ${(err as Error).message}`,
    )
  }
}
