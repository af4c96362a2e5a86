const WINDOW_MS = 10_000

/** Counts over-limit messages per client in a sliding 10 s window, to disconnect persistent flooders. */
export class FloodTracker {
  private readonly counts = new WeakMap<object, { since: number; count: number }>()

  /** Monotonic by default: messages either side of a wall-clock step are not one window. */
  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Records one over-limit message; returns how many the client sent within the window, this one included. */
  record(client: object): number {
    const t = this.now()
    let entry = this.counts.get(client)
    if (!entry || t - entry.since > WINDOW_MS) {
      entry = { since: t, count: 0 }
      this.counts.set(client, entry)
    }
    entry.count++
    return entry.count
  }
}
