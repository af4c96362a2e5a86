import { type FileHandle, mkdir, open, readFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { writeFileDurably } from './durable-file.js'

/** A key: 1 to 64 characters of lower-case hex, colons allowed (for example `kid:nonce`). */
const KEY = /^[0-9a-f:]{1,64}$/
/** One line of the journal: `key expiry-ms`. */
const LINE = /^([0-9a-f:]{1,64}) (\d{1,15})$/
const MAX_LINE_BYTES = 64 + 1 + 15 + 1
const MIN_COMPACT_LINES = 1024

export interface NonceJournalOptions {
  /** Most keys remembered at once; a new key beyond it is refused ('full'). */
  maxEntries: number
  /** Clock in ms (tests). */
  now?: () => number
}

export type RememberOutcome = 'fresh' | 'replayed' | 'full'

interface Pending {
  line: string
  resolve: () => void
  reject: (err: unknown) => void
}

/**
 * A set of one-time values (nonces), each remembered until its expiry, that
 * survives a crash: `remember` resolves 'fresh' only once the key is on disk
 * (appended and fdatasync'd), so a value accepted before a kill -9 or a power
 * loss is still refused after the restart. Appends made while a write is in
 * flight share the next write (group commit), so a reconnect storm costs one
 * fdatasync per batch, not per device. The file is compacted to the live keys
 * at open and whenever its lines reach twice the live keys of the last compaction.
 * A torn last line (crash mid-append) is ignored: its key was never confirmed.
 */
export class NonceJournal {
  private readonly seen = new Map<string, number>()
  private pending: Pending[] = []
  private writing: Promise<void> | undefined
  private lines = 0
  /** Lines at which the next compaction runs: twice the live keys after the last one (amortized O(1)). */
  private compactAt = MIN_COMPACT_LINES
  private closed = false

  private constructor(
    private readonly file: string,
    private handle: FileHandle,
    private readonly options: Required<NonceJournalOptions>,
  ) {}

  static async open(
    file: string,
    options: NonceJournalOptions,
    carried: ReadonlyMap<string, number> = new Map(),
  ): Promise<NonceJournal> {
    const now = options.now ?? Date.now
    await mkdir(dirname(file), { recursive: true, mode: 0o700 })
    const seen = new Map<string, number>()
    let text = ''
    try {
      const limit = options.maxEntries * 2 * MAX_LINE_BYTES + MAX_LINE_BYTES
      const raw = await readFile(file)
      // Past the limit the journal cannot have been written by us: keep what fits (newest last).
      text = raw.subarray(Math.max(0, raw.length - limit)).toString('utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
    const t = now()
    // Keys from an older store (a migration), written into the journal by the rewrite below.
    for (const [k, v] of carried) if (KEY.test(k) && v >= t) seen.set(k, v)
    for (const line of text.split('\n')) {
      const m = LINE.exec(line)
      if (!m) continue
      const expiry = Number(m[2])
      if (expiry >= t) seen.set(m[1]!, Math.max(expiry, seen.get(m[1]!) ?? 0))
    }
    const journal = new NonceJournal(file, await NonceJournal.rewrite(file, seen), {
      now,
      maxEntries: options.maxEntries,
    })
    for (const [k, v] of seen) journal.seen.set(k, v)
    journal.lines = seen.size
    journal.compactAt = Math.max(MIN_COMPACT_LINES, 2 * seen.size)
    return journal
  }

  /** Writes the live keys to a new file and puts it in place durably; returns an append handle. */
  private static async rewrite(file: string, seen: Map<string, number>): Promise<FileHandle> {
    await writeFileDurably(file, [...seen].map(([k, v]) => `${k} ${Math.floor(v)}\n`).join(''))
    return open(file, 'a', 0o600)
  }

  get size(): number {
    return this.seen.size
  }

  /**
   * 'replayed' when `key` is remembered and not expired; 'full' when
   * `maxEntries` live keys are; else remembers it until `expiresAt` (ms) and
   * resolves 'fresh' once that is durable. Rejects when the write fails: the
   * caller must then refuse what the nonce was for.
   */
  async remember(key: string, expiresAt: number, now = this.options.now()): Promise<RememberOutcome> {
    if (this.closed) throw new Error('nonce journal is closed')
    if (!KEY.test(key))
      throw new Error(`Expected a nonce key of 1 to 64 hex digits or colons, got ${key.length} characters`)
    const known = this.seen.get(key)
    if (known !== undefined && known >= now) return 'replayed'
    if (this.seen.size >= this.options.maxEntries) {
      this.prune(now)
      if (this.seen.size >= this.options.maxEntries) return 'full'
    }
    // In memory at once, so a second use in the same tick is already a replay.
    this.seen.set(key, expiresAt)
    await new Promise<void>((resolve, reject) => {
      this.pending.push({ line: `${key} ${Math.floor(expiresAt)}\n`, resolve, reject })
      this.writing ??= this.flush()
    })
    return 'fresh'
  }

  private prune(now: number): void {
    for (const [k, v] of this.seen) if (v < now) this.seen.delete(k)
  }

  /** Writes what is pending, batch after batch, until nothing is. */
  private async flush(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const batch = this.pending
        this.pending = []
        try {
          await this.handle.write(batch.map((p) => p.line).join(''))
          await this.handle.datasync()
          this.lines += batch.length
          for (const p of batch) p.resolve()
        } catch (err) {
          for (const p of batch) p.reject(err)
        }
        if (this.lines >= this.compactAt) await this.compact()
      }
    } finally {
      this.writing = undefined
    }
  }

  private async compact(): Promise<void> {
    this.prune(this.options.now())
    const old = this.handle
    try {
      this.handle = await NonceJournal.rewrite(this.file, this.seen)
    } catch {
      // Whichever file is in place holds every confirmed key (the old one, or the rewritten one if
      // only the directory sync failed): keep appending to it, and try again later.
      this.handle = await open(this.file, 'a', 0o600)
    }
    await old.close().catch(() => undefined)
    this.lines = this.seen.size
    this.compactAt = Math.max(MIN_COMPACT_LINES, 2 * this.seen.size)
  }

  async close(): Promise<void> {
    this.closed = true
    await this.writing
    await this.handle.close()
  }
}
