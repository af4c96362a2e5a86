import { mkdir, readdir, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { writeFileDurably } from '../core/durable-file.js'
import type { Logger } from '../core/logger.js'

/** A sealed key update waiting for its device: where it is retained, and until when. */
interface Stored {
  topic: string
  /** The sealed update, base64. */
  payload: string
  until: number
}

/** One file per device at most: a later update replaces an earlier one. */
const MAX_FILE_BYTES = 4096

/**
 * The key updates sent to payload devices (docs/rotation.md), kept in `<stateDir>/key-updates/`
 * (0600) until the end of their overlap: the LAN broker keeps retained messages in memory only, so
 * each start publishes them again, and the end of an overlap clears the retained message (an empty
 * retained publish) so that no copy outlives the old key.
 */
export class KeyUpdateStore {
  private timer: NodeJS.Timeout | undefined
  /** The end of each stored update's overlap, by file: when to sweep next. */
  private readonly ends = new Map<string, number>()
  private stopped = false

  constructor(
    private readonly dir: string,
    private readonly publish: (topic: string, payload: Buffer) => Promise<void>,
    private readonly logger: Logger,
  ) {}

  /** Keeps `payload` for `deviceId` until `until`, then publishes it retained on `topic`. */
  async send(deviceId: string, topic: string, payload: Buffer, until: number): Promise<void> {
    const stored: Stored = { topic, payload: payload.toString('base64'), until }
    const file = join(this.dir, `${deviceId}.json`)
    await mkdir(this.dir, { recursive: true, mode: 0o700 })
    await writeFileDurably(file, JSON.stringify(stored))
    this.ends.set(file, until)
    this.schedule()
    await this.publish(topic, payload)
  }

  /** At start: publishes again what is still in its overlap and clears what is past it. */
  async start(now = Date.now()): Promise<void> {
    await this.sweep(now, true)
    this.schedule()
  }

  stop(): void {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
  }

  /** A sweep at the soonest end of an overlap (timers cap at about 24 days: then it looks again). */
  private schedule(): void {
    if (this.timer) clearTimeout(this.timer)
    if (this.stopped || this.ends.size === 0) return
    const soonest = Math.min(...this.ends.values())
    const delay = Math.min(Math.max(0, soonest - Date.now()), 2_000_000_000)
    this.timer = setTimeout(() => {
      this.sweep(Date.now(), false)
        .catch((err: unknown) =>
          this.logger.warn({ err: (err as Error).message }, 'key updates: the check failed'),
        )
        .finally(() => this.schedule())
    }, delay)
    this.timer.unref()
  }

  /** Clears the updates past their overlap; with `republish`, publishes the others again. */
  async sweep(now: number, republish: boolean): Promise<void> {
    let names: string[]
    try {
      names = (await readdir(this.dir)).filter((n) => n.endsWith('.json'))
    } catch {
      return
    }
    for (const name of names) {
      const file = join(this.dir, name)
      let stored: Stored
      try {
        const text = await readFile(file, 'utf8')
        if (text.length > MAX_FILE_BYTES) throw new Error('too large')
        stored = JSON.parse(text) as Stored
        if (
          typeof stored.topic !== 'string' ||
          typeof stored.payload !== 'string' ||
          typeof stored.until !== 'number'
        )
          throw new Error('not a key update')
      } catch (err) {
        this.logger.warn({ file, err: (err as Error).message }, 'key updates: an unreadable file is removed')
        await rm(file, { force: true })
        continue
      }
      if (now >= stored.until) {
        await this.publish(stored.topic, Buffer.alloc(0))
        await rm(file, { force: true })
        this.ends.delete(file)
        this.logger.info(
          { topic: stored.topic },
          'key updates: the overlap is over; the retained key update is cleared',
        )
      } else {
        this.ends.set(file, stored.until)
        if (republish) await this.publish(stored.topic, Buffer.from(stored.payload, 'base64'))
      }
    }
  }
}
