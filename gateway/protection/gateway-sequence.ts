import { mkdir, readFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { writeFileDurably } from '../../core/durable-file.js'
import { describeError } from '../../core/errors.js'

const DEFAULT_BLOCK = 65_536
const MAX_SEQ = 2 ** 40 - 1
/** A failed reservation is tried again after this long, not on every delivery. */
const RETRY_MS = 1000

/** The part of a pino logger the sequence uses. */
export interface SequenceLogger {
  error(fields: Record<string, unknown>, message: string): void
}

export interface GatewaySequenceOptions {
  /** Numbers reserved per write; the next block is reserved when half of this one is used. */
  block?: number
  logger?: SequenceLogger
}

/**
 * The gateway's own sender sequence number (gateway-to-device messages): one
 * counter for all devices, since every device has its own keys. Numbers are
 * reserved in blocks written durably (file and directory fsync'd) before any
 * number of the block is used (RFC 8613 Appendix B.1.1), so neither a crash
 * nor a power loss ever reuses a nonce.
 *
 * `take` is synchronous and never touches the disk or throws: it is called in
 * aedes' synchronous delivery hook. The next block is reserved in the
 * background when half of the current one is used; if a burst uses the whole
 * block before that write is durable (or the write fails), `take` answers
 * `undefined` and the caller withholds that delivery.
 */
export class GatewaySequence {
  private next: number
  private reservedUpTo: number
  private reserving: Promise<void> | undefined
  private failures = 0
  /** After a failed write, the next attempt waits until then (ms, performance clock). */
  private retryAt = 0

  private constructor(
    private readonly file: string,
    stored: number,
    private readonly block: number,
    private readonly logger: SequenceLogger | undefined,
  ) {
    this.next = stored
    this.reservedUpTo = stored
  }

  /** Reads the stored bound and reserves the first block before resolving; throws if it cannot. */
  static async open(file: string, options: GatewaySequenceOptions = {}): Promise<GatewaySequence> {
    await mkdir(dirname(file), { recursive: true, mode: 0o700 })
    let stored = 0
    try {
      const text = (await readFile(file, 'utf8')).trim()
      if (/^\d{1,13}$/.test(text)) stored = Number(text)
      else if (text.length > 0) throw new Error(`${file}: not a sequence number; refusing to guess one`)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
    const block = options.block ?? DEFAULT_BLOCK
    const upTo = Math.min(MAX_SEQ, stored + block)
    if (upTo <= stored) throw new Error(`${file}: gateway sequence numbers exhausted: rotate the device keys`)
    await writeFileDurably(file, `${upTo}\n`)
    const sequence = new GatewaySequence(file, stored, block, options.logger)
    sequence.reservedUpTo = upTo
    return sequence
  }

  /** Numbers left in the durable reservation. */
  get available(): number {
    return this.reservedUpTo - this.next
  }

  /** Reservation writes that failed so far. */
  get failedReservations(): number {
    return this.failures
  }

  /** The next number, or undefined when none is durably reserved right now (never throws). */
  take(): number | undefined {
    if (this.next >= this.reservedUpTo) {
      this.reserveAhead()
      return undefined
    }
    const n = this.next++
    if (this.reservedUpTo - this.next <= this.block / 2) this.reserveAhead()
    return n
  }

  private reserveAhead(): void {
    if (this.reserving || performance.now() < this.retryAt) return
    this.reserving = this.reserve().finally(() => {
      this.reserving = undefined
    })
  }

  /** Resolves once no reservation is being written (tests, shutdown). */
  async settled(): Promise<void> {
    await this.reserving
  }

  private async reserve(): Promise<void> {
    const upTo = Math.min(MAX_SEQ, Math.max(this.reservedUpTo, this.next) + this.block)
    if (upTo <= this.next) {
      this.failures++
      this.retryAt = performance.now() + RETRY_MS
      this.logger?.error({ file: this.file }, 'gateway sequence numbers exhausted: rotate the device keys')
      return
    }
    try {
      await writeFileDurably(this.file, `${upTo}\n`)
      this.reservedUpTo = Math.max(this.reservedUpTo, upTo)
    } catch (err) {
      this.failures++
      this.retryAt = performance.now() + RETRY_MS
      this.logger?.error(
        { file: this.file, err: describeError(err) },
        'cannot reserve gateway sequence numbers: sealed and MAC deliveries are withheld until it works',
      )
    }
  }
}
