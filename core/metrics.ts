/**
 * The name of one series: `family` alone, or `family{label="value",...}` with
 * the labels in the order given (Prometheus text format).
 */
export function series(family: string, labels: Readonly<Record<string, string | number>> = {}): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${v}"`)
  return pairs.length === 0 ? family : `${family}{${pairs.join(',')}}`
}

/** The family of a series name: what comes before `{`. */
export function familyOf(name: string): string {
  const brace = name.indexOf('{')
  return brace === -1 ? name : name.slice(0, brace)
}

/**
 * In-process counters and gauges, keyed by a Prometheus-style name with labels.
 * Deliberately small: it is read by `status`, by tests, and later exported on /metrics.
 * Components `declare` the series they count, so every counter shows (at 0)
 * before its first event: an operator reading `status --json` sees every name
 * the docs list, and a dashboard sees a zero rather than nothing.
 */
export class Metrics {
  private readonly counters = new Map<string, number>()
  private readonly gauges = new Map<string, () => number>()

  increment(name: string, by = 1): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + by)
  }

  /** Makes a counter series visible at 0 until it is first incremented. */
  declare(name: string): void {
    if (!this.counters.has(name)) this.counters.set(name, 0)
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

  /** Every counter (declared ones at 0 too) and every gauge, sorted by name. */
  snapshot(): Record<string, number> {
    const out: Record<string, number> = Object.fromEntries(this.counters)
    for (const [name, read] of this.gauges) out[name] = read()
    return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
  }
}

/** The series of a snapshot that are not zero (for the log line and the health message). */
export function nonZero(snapshot: Readonly<Record<string, number>>): Record<string, number> {
  return Object.fromEntries(Object.entries(snapshot).filter(([, v]) => v !== 0))
}
