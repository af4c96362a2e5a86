/**
 * A token bucket: `perSecond` tokens a second up to `burst`, starting full.
 * `now` returns milliseconds on a monotonic clock (inject a fake one in tests).
 * A request larger than `burst` can never pass.
 */
export class TokenBucket {
  private tokens: number
  private last: number

  constructor(
    readonly perSecond: number,
    readonly burst: number = perSecond,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(perSecond > 0) || !(burst > 0)) {
      throw new RangeError(`Expected a positive rate and burst, got ${perSecond}/s and burst ${burst}`)
    }
    this.tokens = burst
    this.last = now()
  }

  /** Takes `amount` tokens if there are that many, and says whether it did. */
  take(amount = 1): boolean {
    this.refill()
    if (amount > this.tokens) return false
    this.tokens -= amount
    return true
  }

  /** Tokens available now (for tests and metrics). */
  available(): number {
    this.refill()
    return this.tokens
  }

  private refill(): void {
    const now = this.now()
    const elapsed = now - this.last
    if (elapsed <= 0) return
    this.last = now
    this.tokens = Math.min(this.burst, this.tokens + (elapsed / 1000) * this.perSecond)
  }
}
