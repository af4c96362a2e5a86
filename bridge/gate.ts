import { distinctUntilChanged, type Observable, type Subscription } from 'rxjs'

/**
 * Whether the bridge may send now (for example while the WireGuard tunnel is
 * healthy). Publishing waits on it message by message, so closing it stops new
 * sends while messages already in flight still get their PUBACKs (no
 * duplicates when it opens again on the same connection).
 */
export class SendGate {
  private open: boolean
  private waiters: Array<() => void> = []
  private subscription: Subscription | undefined

  constructor(initiallyOpen = true) {
    this.open = initiallyOpen
  }

  /** Follows `source` (until stop); `onChange` runs on each transition. */
  follow(source: Observable<boolean>, onChange: (open: boolean) => void): void {
    this.open = false
    this.subscription = source.pipe(distinctUntilChanged()).subscribe((open) => {
      this.set(open)
      onChange(open)
    })
  }

  get isOpen(): boolean {
    return this.open
  }

  /** Resolves at once when open, else when it opens. */
  opened(): Promise<void> {
    if (this.open) return Promise.resolve()
    return new Promise((resolve) => this.waiters.push(resolve))
  }

  private set(open: boolean): void {
    this.open = open
    if (!open) return
    const waiters = this.waiters
    this.waiters = []
    // In the order they waited, so messages leave in queue order.
    for (const resolve of waiters) resolve()
  }

  stop(): void {
    this.subscription?.unsubscribe()
  }
}
