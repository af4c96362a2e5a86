/**
 * Decorrelated-jitter backoff with a cap: each delay is drawn between the
 * initial delay and three times the previous one, never above the cap.
 * Spreads reconnecting gateways apart and never spins.
 */
export class Backoff {
  private previous: number

  constructor(
    private readonly initialMs: number,
    private readonly maxMs: number,
    private readonly random: () => number = Math.random,
  ) {
    this.previous = initialMs
  }

  next(): number {
    const upper = Math.max(this.initialMs, this.previous * 3)
    const delay = Math.min(this.maxMs, this.initialMs + this.random() * (upper - this.initialMs))
    this.previous = delay
    return Math.round(delay)
  }

  reset(): void {
    this.previous = this.initialMs
  }
}
