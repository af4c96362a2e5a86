import { mkdir, open, rename } from 'node:fs/promises'
import { dirname } from 'node:path'
import { describeError } from '../core/errors.js'
import { createLogger } from '../core/logger.js'
import { CryptoError } from './errors.js'
import { ReplayStoreError } from './replay-errors.js'
import { checkSave, copyWindows, decodeSnapshot, encodeSnapshot, type Snapshot } from './replay-snapshot.js'
import type { ReplayStore } from './replay-store.js'
import { floorState, type ReplayState } from './replay-window.js'

const DEFAULT_MAX_BYTES = 16 * 1024 * 1024

/** How the last `load` found the files. */
export type ReplayRecovery =
  /** No file yet: first start. */
  | 'fresh'
  /** The current snapshot was valid and is used as is. */
  | 'current'
  /**
   * The current snapshot was missing or corrupt; every window was set to refuse
   * all numbers up to the highest one in the older snapshot(s). Logged.
   */
  | 'previous-floor'
  /** Corrupt, and no valid older snapshot: started with empty windows. Logged as an error. */
  | 'unrecoverable'

/** The part of a pino logger the store uses. */
export interface ReplayStoreLogger {
  warn(fields: Record<string, unknown>, message: string): void
  error(fields: Record<string, unknown>, message: string): void
}

export interface FileReplayStoreOptions {
  /** Largest snapshot the store reads or writes; default 16 MiB (about 250,000 windows). */
  maxBytes?: number
  /** Where recovery events go; default a pino logger on stdout. */
  logger?: ReplayStoreLogger
}

type ReadResult = { kind: 'missing' } | { kind: 'ok'; snapshot: Snapshot } | { kind: 'bad'; reason: string }

interface PendingSave {
  kidHex: string
  state: ReplayState
  resolve: () => void
  reject: (err: unknown) => void
}

/**
 * Keeps every replay window in one file, `path`, rewritten whole on each
 * commit: write `path.tmp`, fsync it, rename the current file to `path.prev`,
 * rename the temp file to `path`, fsync the directory. The previous good
 * snapshot therefore survives until the new one is in place.
 *
 * Group commit: saves made in the same tick, or while a write is in flight,
 * share the next write; each save resolves once a write containing it is
 * durable. One process per file.
 */
export class FileReplayStore implements ReplayStore {
  private readonly maxBytes: number
  private customLogger: ReplayStoreLogger | undefined
  private windows = new Map<string, ReplayState>()
  private generation = 0
  private loading: Promise<void> | undefined
  private currentIsCorrupt = false
  private pending: PendingSave[] = []
  private scheduled = false
  private writing: Promise<void> | undefined
  private closed = false
  private writeCount = 0
  private recoveryValue: ReplayRecovery | undefined

  constructor(
    readonly path: string,
    options: FileReplayStoreOptions = {},
  ) {
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 128) {
      throw new CryptoError(
        'CRYPTO_ERR_BAD_INPUT',
        `Expected \`maxBytes\` to be an integer of at least 128, got \`${String(maxBytes)}\``,
      )
    }
    this.maxBytes = maxBytes
    this.customLogger = options.logger
  }

  /** Number of snapshot files written so far (one per group commit). */
  get writes(): number {
    return this.writeCount
  }

  /** How the files were found at load; undefined before the first load. */
  get recovery(): ReplayRecovery | undefined {
    return this.recoveryValue
  }

  async load(): Promise<Map<string, ReplayState>> {
    await this.ensureLoaded()
    return copyWindows(this.windows)
  }

  save(kidHex: string, state: ReplayState): Promise<void> {
    let copy: ReplayState
    try {
      copy = checkSave(kidHex, state)
    } catch (err) {
      return Promise.reject(err)
    }
    if (this.closed) {
      return Promise.reject(
        new ReplayStoreError('CRYPTO_ERR_REPLAY_STORE_CLOSED', 'The replay store is closed'),
      )
    }
    return new Promise((resolve, reject) => {
      this.pending.push({ kidHex, state: copy, resolve, reject })
      this.schedule()
    })
  }

  async close(): Promise<void> {
    this.closed = true
    while (this.writing || this.scheduled || this.pending.length > 0) {
      await (this.writing ?? new Promise((resolve) => setImmediate(resolve)))
    }
  }

  private schedule(): void {
    if (this.scheduled || this.writing) return
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      this.writing = this.flush().finally(() => {
        this.writing = undefined
        if (this.pending.length > 0) this.schedule()
      })
    })
  }

  /** Writes every pending save in one snapshot. Never rejects: failures reject the batch's saves. */
  private async flush(): Promise<void> {
    const batch = this.pending
    this.pending = []
    try {
      await this.ensureLoaded()
      const next = new Map(this.windows)
      for (const save of batch) next.set(save.kidHex, save.state)
      await this.write(next)
      this.windows = next
      for (const save of batch) save.resolve()
    } catch (err) {
      const error =
        err instanceof ReplayStoreError
          ? err
          : new ReplayStoreError(
              'CRYPTO_ERR_REPLAY_STORE_IO',
              `Could not write the replay windows to \`${this.path}\`: ${describeError(err)}`,
              { cause: err },
            )
      for (const save of batch) save.reject(error)
    }
  }

  private async write(windows: Map<string, ReplayState>): Promise<void> {
    const generation = this.generation + 1
    const data = encodeSnapshot({ generation, windows })
    if (data.length > this.maxBytes) {
      throw new ReplayStoreError(
        'CRYPTO_ERR_REPLAY_STORE_FULL',
        `The replay windows need ${data.length} bytes, over the limit of ${this.maxBytes} (\`maxBytes\`)`,
      )
    }
    const tmp = `${this.path}.tmp`
    const file = await open(tmp, 'w', 0o600)
    try {
      await file.chmod(0o600)
      await file.writeFile(data)
      await file.sync()
    } finally {
      await file.close()
    }
    // A corrupt current file is set aside, so that the good older snapshot stays as `.prev`.
    await renameIfExists(this.path, this.currentIsCorrupt ? `${this.path}.corrupt` : `${this.path}.prev`)
    this.currentIsCorrupt = false
    await rename(tmp, this.path)
    await syncDirectory(dirname(this.path))
    this.generation = generation
    this.writeCount++
  }

  private ensureLoaded(): Promise<void> {
    this.loading ??= this.readFiles().catch((err: unknown) => {
      this.loading = undefined
      throw err
    })
    return this.loading
  }

  private async readFiles(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 })
    const current = await this.read(this.path)
    if (current.kind === 'ok') {
      this.use(current.snapshot, 'current')
      return
    }
    const older = [await this.read(`${this.path}.prev`), await this.read(`${this.path}.tmp`)]
    if (current.kind === 'missing' && older.every((r) => r.kind === 'missing')) {
      this.use({ generation: 0, windows: new Map() }, 'fresh')
      return
    }
    this.currentIsCorrupt = current.kind === 'bad'
    const reason = current.kind === 'bad' ? current.reason : 'current snapshot missing'
    const valid = older.flatMap((r) => (r.kind === 'ok' ? [r.snapshot] : []))
    if (valid.length === 0) {
      this.use({ generation: 0, windows: new Map() }, 'unrecoverable')
      this.logger.error(
        { security: true, event: 'replay_store_unrecoverable', path: this.path, reason },
        'Replay window file is unreadable and no older snapshot is valid: starting with empty windows, ' +
          'earlier messages are not refused as replays',
      )
      return
    }
    this.use(floorSnapshots(valid), 'previous-floor')
    const fields = { security: true, event: 'replay_store_recovered', path: this.path, reason }
    const message =
      'Replay window file restored from an older snapshot: each window refuses every number up to its highest'
    if (current.kind === 'bad') this.logger.error(fields, message)
    else this.logger.warn(fields, message)
  }

  private use(snapshot: Snapshot, recovery: ReplayRecovery): void {
    this.windows = snapshot.windows
    this.generation = snapshot.generation
    this.recoveryValue = recovery
  }

  private async read(path: string): Promise<ReadResult> {
    let file: Awaited<ReturnType<typeof open>>
    try {
      file = await open(path, 'r')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' }
      throw err
    }
    try {
      const { size } = await file.stat()
      if (size > this.maxBytes)
        return { kind: 'bad', reason: `${size} bytes, over the limit of ${this.maxBytes}` }
      const decoded = decodeSnapshot(await file.readFile())
      return 'error' in decoded ? { kind: 'bad', reason: decoded.error } : { kind: 'ok', snapshot: decoded }
    } finally {
      await file.close()
    }
  }

  private get logger(): ReplayStoreLogger {
    this.customLogger ??= createLogger().child({ module: 'replay-store' })
    return this.customLogger
  }
}

/** Merges older snapshots, flooring every window at its highest number (see ReplayRecovery). */
function floorSnapshots(snapshots: Snapshot[]): Snapshot {
  const highest = new Map<string, number>()
  for (const { windows } of snapshots) {
    for (const [kidHex, state] of windows)
      highest.set(kidHex, Math.max(highest.get(kidHex) ?? -1, state.highest))
  }
  return {
    generation: Math.max(...snapshots.map((s) => s.generation)),
    windows: new Map([...highest].map(([kidHex, floor]) => [kidHex, floorState(floor)])),
  }
}

async function renameIfExists(from: string, to: string): Promise<void> {
  try {
    await rename(from, to)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
}

async function syncDirectory(dir: string): Promise<void> {
  // Windows cannot open a directory for fsync; the rename is as durable as it gets there.
  if (process.platform === 'win32') return
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}
