import { readFile } from 'node:fs/promises'
import { writeSecretFile } from '../pki/files.js'

/** Nonces remembered at most; beyond it the command is refused (a flood of valid commands is an operator fault). */
export const MAX_REMEMBERED_NONCES = 100_000
const MAX_FILE_BYTES = MAX_REMEMBERED_NONCES * 64

/**
 * Nonces of accepted downlink commands, each kept until the command would be
 * stale anyway, in a file rewritten atomically before the command is
 * delivered: a restart does not make a command replayable.
 */
export class CommandNonces {
  private writing: Promise<void> = Promise.resolve()

  private constructor(
    private readonly file: string,
    private readonly seen: Map<string, number>,
  ) {}

  static async open(file: string): Promise<CommandNonces> {
    const seen = new Map<string, number>()
    try {
      const text = await readFile(file, 'utf8')
      if (text.length <= MAX_FILE_BYTES) {
        const parsed: unknown = JSON.parse(text)
        if (parsed && typeof parsed === 'object') {
          for (const [nonce, expiry] of Object.entries(parsed)) {
            if (/^[0-9a-f]{32}$/.test(nonce) && typeof expiry === 'number') seen.set(nonce, expiry)
          }
        }
      }
    } catch {
      // Missing or unreadable: start empty. Commands older than the window are refused as stale anyway.
    }
    return new CommandNonces(file, seen)
  }

  get size(): number {
    return this.seen.size
  }

  /**
   * Remembers `nonce` until `expiresAt` and persists it. Resolves 'replayed'
   * when it is already remembered, 'full' when too many are, else 'fresh' once
   * it is on disk.
   */
  async remember(nonce: Buffer, expiresAt: number, now = Date.now()): Promise<'fresh' | 'replayed' | 'full'> {
    const key = nonce.toString('hex')
    for (const [n, expiry] of this.seen) if (expiry < now) this.seen.delete(n)
    if (this.seen.has(key)) return 'replayed'
    if (this.seen.size >= MAX_REMEMBERED_NONCES) return 'full'
    this.seen.set(key, expiresAt)
    const snapshot = JSON.stringify(Object.fromEntries(this.seen))
    const write = this.writing.then(() => writeSecretFile(this.file, snapshot))
    this.writing = write.catch(() => undefined)
    await write
    return 'fresh'
  }
}
