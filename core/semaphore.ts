/**
 * At most `slots` tasks at once; the others wait in arrival order. Used to keep
 * CPU-heavy work on libuv's thread pool (scrypt) from taking every thread, so
 * the queue's file writes and fdatasyncs, which share that pool, are not held
 * behind a storm of password checks.
 */
export class Semaphore {
  private active = 0
  private readonly waiting: Array<() => void> = []

  private slots: number

  constructor(slots: number) {
    this.slots = Semaphore.checked(slots)
  }

  private static checked(slots: number): number {
    if (!Number.isInteger(slots) || slots < 1) throw new Error(`Expected at least 1 slot, got ${slots}`)
    return slots
  }

  get size(): number {
    return this.slots
  }

  /**
   * Changes the number of slots. More slots start waiting tasks at once; fewer let the tasks
   * running finish, and start no new one until fewer than `slots` run.
   */
  resize(slots: number): void {
    this.slots = Semaphore.checked(slots)
    while (this.active < this.slots && this.waiting.length > 0) {
      this.active++
      this.waiting.shift()?.()
    }
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
      const next = this.active <= this.slots ? this.waiting.shift() : undefined
      // The slot passes straight to the next waiter; `active` stays as it is.
      if (next) next()
      else this.active--
    }
  }
}
