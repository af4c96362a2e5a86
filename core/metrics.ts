/**
 * In-process counters and gauges, keyed by a Prometheus-style name with labels.
 * Deliberately small: it is read by `status`, by tests, and later exported on /metrics.
 */
export class Metrics {
  private readonly counters = new Map<string, number>()
  private readonly gauges = new Map<string, () => number>()

  increment(name: string, by = 1): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + by)
  }

  /** Registers a gauge read lazily when a snapshot is taken. */
  gauge(name: string, read: () => number): void {
    this.gauges.set(name, read)
  }

  get(name: string): number {
    const gauge = this.gauges.get(name)
    if (gauge) return gauge()
    return this.counters.get(name) ?? 0
  }

  snapshot(): Record<string, number> {
    const out: Record<string, number> = Object.fromEntries(this.counters)
    for (const [name, read] of this.gauges) out[name] = read()
    return out
  }
}
