import { mkdir, readFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { writeFileDurably } from './atomic-file.js'
import { DeviceError } from './errors.js'

/** Largest sequence number (OSCORE Partial IV: at most 40 bits). */
export const MAX_SEQ = 2 ** 40 - 1
export const DEFAULT_BLOCK_SIZE = 32
const MAX_BLOCK_SIZE = 1 << 20
const FORMAT = /^edge-gateway sequence v1 (\d{1,13})\n$/

/**
 * The device's sender sequence number, persisted as RFC 8613 Appendix B.1.1
 * does: before handing out any number of a block of `blockSize`, the end of
 * that block is written durably. After a crash the counter resumes at the
 * stored end, skipping the unused rest of the block, so a number (and so an
 * AEAD nonce) is never used twice. The file holds one line,
 * `edge-gateway sequence v1 <end>`: every number below `end` may have been used.
 *
 * One counter per file: two processes (or two counters) on the same file would
 * hand out the same numbers. Deleting the file has the same effect; the device
 * then needs a new master secret.
 */
export class SequenceCounter {
  private nextSeq: number
  private reservedEnd: number
  private queue: Promise<unknown> = Promise.resolve()

  private constructor(
    readonly path: string,
    readonly blockSize: number,
    storedEnd: number,
  ) {
    this.nextSeq = storedEnd
    this.reservedEnd = storedEnd
  }

  /** Opens (or, when the file does not exist, starts at 0) the counter stored at `path`. */
  static async open(path: string, blockSize = DEFAULT_BLOCK_SIZE): Promise<SequenceCounter> {
    if (!Number.isSafeInteger(blockSize) || blockSize < 1 || blockSize > MAX_BLOCK_SIZE) {
      throw new DeviceError(
        'DEVICE_ERR_BAD_INPUT',
        `Expected \`blockSize\` to be an integer from 1 to ${MAX_BLOCK_SIZE}, got \`${blockSize}\``,
      )
    }
    return new SequenceCounter(path, blockSize, await readStoredEnd(path))
  }

  /** The stored block end: the next number after a restart. */
  get reserved(): number {
    return this.reservedEnd
  }

  /**
   * The next sequence number; strictly greater than every number handed out
   * before, across restarts. Concurrent calls are served in call order.
   */
  next(): Promise<number> {
    const result = this.queue.then(() => this.take())
    this.queue = result.catch(() => {})
    return result
  }

  private async take(): Promise<number> {
    if (this.nextSeq > MAX_SEQ) {
      throw new DeviceError(
        'DEVICE_ERR_SEQUENCE_EXHAUSTED',
        `Every sequence number up to 2^40 - 1 is used (\`${this.path}\`); provision a new master secret`,
      )
    }
    if (this.nextSeq >= this.reservedEnd) {
      const end = Math.min(this.nextSeq + this.blockSize, MAX_SEQ + 1)
      await mkdir(dirname(this.path), { recursive: true, mode: 0o700 })
      await writeFileDurably(this.path, `edge-gateway sequence v1 ${end}\n`)
      this.reservedEnd = end
    }
    const seq = this.nextSeq
    this.nextSeq++
    return seq
  }
}

async function readStoredEnd(path: string): Promise<number> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0
    throw new DeviceError('DEVICE_ERR_SEQUENCE_FILE', `Cannot read the sequence file \`${path}\``, {
      cause: err,
    })
  }
  const match = FORMAT.exec(text)
  const end = match ? Number(match[1]) : Number.NaN
  if (!Number.isSafeInteger(end) || end > MAX_SEQ + 1) {
    throw new DeviceError(
      'DEVICE_ERR_SEQUENCE_FILE',
      `Expected the sequence file \`${path}\` to hold "edge-gateway sequence v1 <number>", got ${text.length} bytes ` +
        'that do not match; the safe next number is unknown, so the device needs a new master secret',
    )
  }
  return end
}
