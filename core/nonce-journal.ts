import { type FileHandle, mkdir, open, readFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { writeFileDurably } from './durable-file.js'

/** A key: 1 to 64 characters of lower-case hex, colons allowed (for example `kid:nonce`). */
const KEY = /^[0-9a-f:]{1,64}$/
/** One line of the journal: `key expiry-ms`. */
const LINE = /^([0-9a-f:]{1,64}) (\d{1,15})$/
/**
 * The first line of a rewritten journal: the latest expiry of any key it has forgotten. Not a
 * key line, so versions without it skip it.
 */
const FLOOR = /^floor (\d{1,15})$/
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
 *
 * Forgetting is by the wall clock, which can step back (a Raspberry Pi has no real-time clock: a
 * power cut restores an hour-old time, and NTP corrects it later). A key forgotten at its expiry
 * would then be taken as fresh again if its expiry reads as in the future. So the journal keeps,
 * on disk, the latest expiry among the keys it has forgotten (its floor), and refuses as replayed
 * any key whose expiry is at or below it. Callers give an expiry that depends only on what the
 * sender signed (its timestamp plus the window), so a replay always brings the expiry it had.
 */
export class NonceJournal {
  private readonly seen = new Map<string, number>()
  private pending: Pending[] = []
  private writing: Promise<void> | undefined
  private lines = 0
  /** Lines at which the next compaction runs: twice the live keys after the last one (amortized O(1)). */
  private compactAt = MIN_COMPACT_LINES
  private closed = false
  /** The latest expiry of a key forgotten: no key expiring at or before it is taken as fresh. */
  private floor = 0

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
    let floor = 0
    const keep = (key: string, expiry: number) => {
      if (expiry >= t) seen.set(key, Math.max(expiry, seen.get(key) ?? 0))
      else floor = Math.max(floor, expiry)
    }
    // Keys from an older store (a migration), written into the journal by the rewrite below.
    for (const [k, v] of carried) if (KEY.test(k)) keep(k, v)
    for (const line of text.split('\n')) {
      const m = LINE.exec(line)
      if (m) keep(m[1]!, Number(m[2]))
      else {
        const f = FLOOR.exec(line)
        if (f) floor = Math.max(floor, Number(f[1]))
      }
    }
    // Keys at or below the floor would be refused anyway: dropping them keeps the file small.
    for (const [k, v] of seen) if (v <= floor) seen.delete(k)
    const journal = new NonceJournal(file, await NonceJournal.rewrite(file, seen, floor), {
      now,
      maxEntries: options.maxEntries,
    })
    journal.floor = floor
    for (const [k, v] of seen) journal.seen.set(k, v)
    journal.lines = seen.size
    journal.compactAt = Math.max(MIN_COMPACT_LINES, 2 * seen.size)
    return journal
  }

  /** Writes the floor and the live keys to a new file and puts it in place durably; returns an append handle. */
  private static async rewrite(file: string, seen: Map<string, number>, floor: number): Promise<FileHandle> {
    const head = floor > 0 ? `floor ${Math.floor(floor)}\n` : ''
    await writeFileDurably(file, head + [...seen].map(([k, v]) => `${k} ${Math.floor(v)}\n`).join(''))
    return open(file, 'a', 0o600)
  }

  /** The latest expiry of a key forgotten (0: none yet); for tests and status. */
  get forgottenUpTo(): number {
    return this.floor
  }

  /**
   * A warning to log at open when the floor is ahead of the clock: the clock ran ahead while
   * `what` were forgotten, and was set back since. Until the clock passes the floor, one whose
   * freshness ends before it is refused as replayed, however new. Undefined when it is not ahead.
   */
  floorAheadWarning(what: string, now = Date.now()): string | undefined {
    const { floor, file } = this
    if (floor <= now) return undefined
    return `${file}: ${what} were forgotten up to ${new Date(floor).toISOString()}, ahead of the system clock (${new Date(now).toISOString()}): the clock ran ahead and was set back. Until it passes that time, ${what} whose freshness ends before it are refused as replayed. If the clock is right now, stop the gateway and remove the line "floor ${Math.floor(floor)}" from ${file}`
  }

  get size(): number {
    return this.seen.size
  }

  /**
   * 'replayed' when `key` is remembered and not expired, or when `expiresAt` is at or below the
   * floor (the key may have been forgotten: the clock is behind a time the journal has seen);
   * 'full' when `maxEntries` live keys are; else remembers it until `expiresAt` (ms) and
   * resolves 'fresh' once that is durable. Rejects when the write fails: the
   * caller must then refuse what the nonce was for.
   */
  async remember(key: string, expiresAt: number, now = this.options.now()): Promise<RememberOutcome> {
    if (this.closed) throw new Error('nonce journal is closed')
    if (!KEY.test(key))
      throw new Error(`Expected a nonce key of 1 to 64 hex digits or colons, got ${key.length} characters`)
    const known = this.seen.get(key)
    if (known !== undefined && known >= now) return 'replayed'
    if (expiresAt <= this.floor) return 'replayed'
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
    for (const [k, v] of this.seen) {
      if (v >= now) continue
      this.seen.delete(k)
      if (v > this.floor) this.floor = v
    }
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
      this.handle = await NonceJournal.rewrite(this.file, this.seen, this.floor)
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
