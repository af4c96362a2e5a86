import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { writeFileDurably } from './durable-file.js'
import { describeError } from './errors.js'
import type { Logger } from './logger.js'

/**
 * A lower bound on the real time, for decisions that must not be undone by setting the clock back:
 * whether a replaced key (a PSK's or a payload key's `previous`) has been retired.
 *
 * A Raspberry Pi has no real-time clock. After a power cut it starts from the last time it saved
 * (fake-hwclock saves hourly) or from 1970, and NTP corrects it later; NTP also steps it back now
 * and then. Read from the wall clock alone, an overlap that had ended would be open again until
 * then, and the key it retired accepted. The gateway saves the time it has seen in
 * `<stateDir>/clock` every minute and at its stop; at start the floor is that time, and it moves
 * on with the monotonic clock. The floor only ever makes a retirement come sooner, never later.
 *
 * Freshness checks (tokens, commands) keep the wall clock: a floor left in the future by a wrong
 * clock would refuse every device until the real time caught up. Replays across a step back are
 * refused by the nonce journals' own floor (core/nonce-journal.ts).
 */
let floorMs = 0
let floorMono = 0

/**
 * Wall-clock ms, never below the latest time this gateway has seen (this run, and the last ones):
 * a step back of the wall clock is not followed; time goes on from where it was, on the monotonic
 * clock, until the wall clock is ahead again.
 */
export function trustedNow(): number {
  const wall = Date.now()
  const mono = performance.now()
  const floor = floorMs + (mono - floorMono)
  if (wall >= floor) {
    floorMs = wall
    floorMono = mono
    return wall
  }
  return Math.floor(floor)
}

/** Raises the floor to `ms` (Unix ms) as of now; a value below the current one changes nothing. */
export function raiseClockFloor(ms: number): void {
  if (ms > trustedNow()) {
    floorMs = ms
    floorMono = performance.now()
  }
}

/** Forgets the floor (tests). */
export function resetClockFloor(): void {
  floorMs = 0
  floorMono = 0
}

const SAVE_EVERY_MS = 60_000
/** The file holds one decimal number; anything longer is not ours. */
const MAX_FILE_BYTES = 32
const SAVED = /^(\d{1,15})\n?$/

/**
 * Raises the floor to the time saved in `<stateDir>/clock`, if any (for commands run beside the
 * gateway, such as `device rotate`: they read the floor, never write it). Returns the saved time.
 */
export async function raiseClockFloorFrom(stateDir: string): Promise<number | undefined> {
  const saved = await readSaved(join(stateDir, 'clock')).catch(() => undefined)
  if (typeof saved === 'number') raiseClockFloor(saved)
  return typeof saved === 'number' ? saved : undefined
}

/** The saved time; undefined when there is none; a string saying why when the file is not one. */
async function readSaved(file: string): Promise<number | string | undefined> {
  let raw: Buffer
  try {
    raw = await readFile(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  if (raw.length > MAX_FILE_BYTES) return `${raw.length} bytes, not a saved time`
  const m = SAVED.exec(raw.toString('utf8'))
  return m ? Number(m[1]) : 'not a saved time'
}

/** The floor kept in `<stateDir>/clock` while the gateway runs. */
export class ClockFloor {
  private timer: NodeJS.Timeout | undefined
  private saving: Promise<void> = Promise.resolve()
  private warned = false

  private constructor(
    readonly file: string,
    private readonly logger: Logger,
  ) {}

  /**
   * Reads the time saved by the last run (a missing or unreadable file is no floor, said in a
   * warning when unreadable), raises the floor to it, and saves every minute from now on.
   */
  static async open(stateDir: string, logger: Logger): Promise<ClockFloor> {
    const file = join(stateDir, 'clock')
    const floor = new ClockFloor(file, logger)
    const saved = await floor.read()
    if (saved !== undefined) {
      raiseClockFloor(saved)
      const wall = Date.now()
      if (wall < saved) {
        logger.warn(
          {
            clockFile: file,
            systemClock: new Date(wall).toISOString(),
            lastSeen: new Date(saved).toISOString(),
          },
          `the system clock reads ${new Date(wall).toISOString()}, behind the time this gateway last saw (${new Date(saved).toISOString()}): NTP has not corrected it yet. Key overlaps that had ended stay ended; tokens and commands are checked against the system clock. If that saved time is wrong, stop the gateway and remove ${file}`,
        )
      }
    }
    await floor.save()
    floor.timer = setInterval(() => void floor.save(), SAVE_EVERY_MS)
    floor.timer.unref()
    return floor
  }

  private async read(): Promise<number | undefined> {
    let saved: number | string | undefined
    try {
      saved = await readSaved(this.file)
    } catch (err) {
      this.logger.warn(
        { clockFile: this.file, err: describeError(err) },
        'the saved clock floor cannot be read; starting without it',
      )
      return undefined
    }
    if (typeof saved === 'string') {
      this.logger.warn(
        { clockFile: this.file, err: saved },
        'the saved clock floor is not a time; starting without it',
      )
      return undefined
    }
    return saved
  }

  /** Saves the floor (one save at a time); a failure is a warning once, and the next save tries again. */
  save(): Promise<void> {
    this.saving = this.saving.then(async () => {
      try {
        await writeFileDurably(this.file, `${trustedNow()}\n`)
        this.warned = false
      } catch (err) {
        if (!this.warned) {
          this.warned = true
          this.logger.warn(
            { clockFile: this.file, err: describeError(err) },
            'the clock floor cannot be saved',
          )
        }
      }
    })
    return this.saving
  }

  /** Stops the minute saves and saves once more. */
  async close(): Promise<void> {
    clearInterval(this.timer)
    await this.save()
  }
}
