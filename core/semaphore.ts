/**
 * At most `slots` tasks at once; the others wait in arrival order. Used to keep
 * CPU-heavy work on libuv's thread pool (scrypt) from taking every thread, so
 * the queue's file writes and fdatasyncs, which share that pool, are not held
 * behind a storm of password checks.
 */
export class Semaphore {
  private active = 0
  private readonly waiting: Array<() => void> = []

  constructor(private readonly slots: number) {
    if (!Number.isInteger(slots) || slots < 1) throw new Error(`Expected at least 1 slot, got ${slots}`)
  }

  get inUse(): number {
    return this.active
  }

  get queued(): number {
    return this.waiting.length
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.slots) await new Promise<void>((resolve) => this.waiting.push(resolve))
    else this.active++
    try {
      return await task()
    } finally {
      const next = this.waiting.shift()
      // The slot passes straight to the next waiter; `active` stays as it is.
      if (next) next()
      else this.active--
    }
  }
}
