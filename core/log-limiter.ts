/**
 * Bounds repetitive log lines: per key, the first `burst` lines of each window of
 * `windowMs` are written, later ones in that window are only counted, and the next
 * line written says how many were left out (`suppressed`). Nothing is lost that a
 * counter or a command does not also show: it only keeps a burst from flooding the log.
 */
export class LogLimiter {
  private readonly windows = new Map<string, { start: number; written: number; suppressed: number }>()

  constructor(
    private readonly burst = 10,
    private readonly windowMs = 10_000,
    /** Monotonic by default: a wall-clock step must not mute a key for its length. */
    private readonly now: () => number = () => performance.now(),
    /** Keys tracked at once (a key per address can come from anyone): the oldest is forgotten first. */
    private readonly maxKeys = 10_000,
  ) {}

  /**
   * Whether to write this line now, and if so how many lines of `key` were left out
   * since the last one written (undefined: do not write).
   */
  /** Keys tracked now. */
  get size(): number {
    return this.windows.size
  }

  take(key: string): { suppressed: number } | undefined {
    const now = this.now()
    let w = this.windows.get(key)
    if (!w || now - w.start >= this.windowMs) {
      const suppressed = w?.suppressed ?? 0
      if (!w && this.windows.size >= this.maxKeys) {
        const oldest = this.windows.keys().next().value
        if (oldest !== undefined) this.windows.delete(oldest)
      }
      w = { start: now, written: 0, suppressed }
      this.windows.set(key, w)
    }
    if (w.written >= this.burst) {
      w.suppressed++
      return undefined
    }
    w.written++
    const suppressed = w.suppressed
    w.suppressed = 0
    return { suppressed }
  }
}
