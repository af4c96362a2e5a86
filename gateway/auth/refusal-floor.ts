/**
 * When a refused CONNECT is answered. Every refusal leaves the same time after
 * its CONNECT arrived, whatever the check cost, so timing does not tell an
 * unknown username from a known one with a wrong password. That only holds
 * while every check finishes before the floor: on an overloaded box a scrypt
 * check (or its wait for a check slot) can outlast `lan.lockout.refusalDelayMs`,
 * and then the slow refusals would stand out. So the floor rises to the slowest
 * check seen lately (with a margin, rounded up to a step) and sinks back to the
 * configured value once the slow checks are out of the window.
 */
export interface RefusalFloorOptions {
  /** The configured floor (ms); 0 turns the floor, and its rise, off. */
  floorMs: number
  /** How long a slow check keeps the floor up (ms). */
  windowMs?: number
  /** The floor never rises above this many times the configured one. */
  maxFactor?: number
  now?: () => number
}

/** The margin over the slowest recent check, and the step the floor moves by. */
const MARGIN = 1.25
const STEP_MS = 50
const SLOTS = 8

export class RefusalFloor {
  private readonly floorMs: number
  private readonly windowMs: number
  private readonly capMs: number
  private readonly now: () => number
  /** The slowest check in each of SLOTS sub-windows: [slot start, ms]. */
  private readonly slots: Array<[number, number]> = []

  constructor(options: RefusalFloorOptions) {
    this.floorMs = options.floorMs
    this.windowMs = options.windowMs ?? 60_000
    this.capMs = options.floorMs * (options.maxFactor ?? 10)
    this.now = options.now ?? (() => performance.now())
  }

  /** Records how long a check took from the CONNECT's arrival to its verdict. */
  record(checkMs: number): void {
    if (this.floorMs <= 0 || checkMs <= 0) return
    const now = this.now()
    const span = this.windowMs / SLOTS
    const last = this.slots[this.slots.length - 1]
    if (last && now - last[0] < span) last[1] = Math.max(last[1], checkMs)
    else {
      this.slots.push([now, checkMs])
      if (this.slots.length > SLOTS) this.slots.shift()
    }
  }

  /** The time after arrival at which a refusal is answered now (ms). */
  current(): number {
    if (this.floorMs <= 0) return 0
    const since = this.now() - this.windowMs
    let slowest = 0
    for (const [start, ms] of this.slots) if (start >= since) slowest = Math.max(slowest, ms)
    const wanted = Math.ceil((slowest * MARGIN) / STEP_MS) * STEP_MS
    return Math.min(this.capMs, Math.max(this.floorMs, wanted))
  }
}
