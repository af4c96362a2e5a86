import { readFile, rm, stat } from 'node:fs/promises'
import { NonceJournal } from '../core/nonce-journal.js'
import { BridgeError } from './errors.js'

/** Nonces remembered at most; beyond it the command is refused (a flood of valid commands is an operator fault). */
export const MAX_REMEMBERED_NONCES = 100_000
/** The JSON file of earlier versions: a map of nonce to expiry, at most this size. */
const MAX_LEGACY_FILE_BYTES = MAX_REMEMBERED_NONCES * 64
const NONCE_HEX = /^[0-9a-f]{32}$/

/**
 * Nonces of accepted downlink commands and rotation requests, each kept until the
 * command would be stale anyway, in a journal appended to and fdatasync'd before the
 * command is delivered (core/nonce-journal.ts: a group commit, not a rewrite of every
 * nonce per command): a restart does not make a command replayable.
 */
export class CommandNonces {
  private constructor(private readonly journal: NonceJournal) {}

  /**
   * The journal in `file`. The JSON file earlier versions kept (`<file>.json`) is taken
   * into it once, then removed. A store that is there but cannot be read stops the open:
   * starting without it would make every command still fresh replayable.
   */
  static async open(file: string, options: { now?: () => number } = {}): Promise<CommandNonces> {
    const legacy = `${file}.json`
    const carried = await readLegacy(legacy)
    let journal: NonceJournal
    try {
      journal = await NonceJournal.open(file, { maxEntries: MAX_REMEMBERED_NONCES, ...options }, carried)
    } catch (err) {
      throw new BridgeError(
        'BRIDGE_ERR_NONCES',
        `${file}: cannot read the nonces of accepted cloud commands (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
        { cause: err },
      )
    }
    // The journal holds them durably now (its open rewrote it).
    await rm(legacy, { force: true })
    return new CommandNonces(journal)
  }

  get size(): number {
    return this.journal.size
  }

  /** What to warn about at open when the journal's floor is ahead of the clock (NonceJournal.floorAheadWarning). */
  floorAhead(): string | undefined {
    return this.journal.floorAheadWarning('command nonces')
  }

  /**
   * Remembers `nonce` until `expiresAt` and persists it. Resolves 'replayed'
   * when it is already remembered, 'full' when too many are, else 'fresh' once
   * it is on disk.
   */
  async remember(nonce: Buffer, expiresAt: number, now?: number): Promise<'fresh' | 'replayed' | 'full'> {
    return this.journal.remember(nonce.toString('hex'), expiresAt, now)
  }

  async close(): Promise<void> {
    await this.journal.close()
  }
}

/** The nonces of an earlier version's JSON file; empty when there is none. */
async function readLegacy(file: string): Promise<Map<string, number>> {
  const carried = new Map<string, number>()
  const damaged = (why: string, cause?: unknown) =>
    new BridgeError(
      'BRIDGE_ERR_NONCES',
      `${file}: ${why}; it holds the nonces of accepted cloud commands, and starting without them would make those commands replayable. If it is damaged, move it away and start again once twice cloud.downlink.maxAgeSeconds have passed`,
      { cause },
    )
  let text: string
  try {
    const { size } = await stat(file)
    if (size > MAX_LEGACY_FILE_BYTES) throw damaged(`${size} bytes, more than an earlier version wrote`)
    text = await readFile(file, 'utf8')
  } catch (err) {
    if (err instanceof BridgeError) throw err
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return carried
    throw damaged(`cannot be read (${(err as NodeJS.ErrnoException).code})`, err)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw damaged('not JSON', err)
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw damaged('not a JSON object')
  for (const [nonce, expiry] of Object.entries(parsed)) {
    if (NONCE_HEX.test(nonce) && typeof expiry === 'number' && Number.isSafeInteger(expiry))
      carried.set(nonce, expiry)
  }
  return carried
}
