/**
 * At most `slots` tasks at once, and at most `budget` of their summed cost; the others wait in
 * arrival order. Used to keep CPU-heavy work on libuv's thread pool (scrypt) from taking every
 * thread, so the queue's file writes and fdatasyncs, which share that pool, are not held behind
 * a storm of password checks; and, with each check's memory as its cost, to keep a burst of
 * checks from adding more than the budget to the process's resident memory.
 *
 * A task whose cost alone is over the budget still runs, by itself: the budget bounds what runs
 * together, it refuses nothing.
 */
export class Semaphore {
  private active = 0
  private used = 0
  private readonly waiting: Array<{ cost: number; start: () => void }> = []

  private slots: number
  private costBudget: number

  constructor(slots: number, budget = Number.POSITIVE_INFINITY) {
    this.slots = Semaphore.checked(slots)
    this.costBudget = Semaphore.checkedBudget(budget)
  }

  private static checked(slots: number): number {
    if (!Number.isInteger(slots) || slots < 1) throw new Error(`Expected at least 1 slot, got ${slots}`)
    return slots
  }

  private static checkedBudget(budget: number): number {
    if (Number.isNaN(budget) || budget <= 0) throw new Error(`Expected a budget above 0, got ${budget}`)
    return budget
  }

  get size(): number {
    return this.slots
  }

  get budget(): number {
    return this.costBudget
  }

  /**
   * Changes the number of slots (and the budget, when given). More start waiting tasks at once;
   * fewer let the tasks running finish, and start no new one until it fits.
   */
  resize(slots: number, budget: number = this.costBudget): void {
    this.slots = Semaphore.checked(slots)
    this.costBudget = Semaphore.checkedBudget(budget)
    this.startWaiting()
  }

  get inUse(): number {
    return this.active
  }

  /** The summed cost of the tasks running. */
  get costInUse(): number {
    return this.used
  }

  get queued(): number {
    return this.waiting.length
  }

  async run<T>(task: () => Promise<T>, cost = 0): Promise<T> {
    if (this.waiting.length > 0 || !this.fits(cost)) {
      await new Promise<void>((start) => this.waiting.push({ cost, start }))
    } else {
      this.active++
      this.used += cost
    }
    try {
      return await task()
    } finally {
      this.active--
      this.used -= cost
      this.startWaiting()
    }
  }

  private fits(cost: number): boolean {
    return this.active < this.slots && (this.active === 0 || this.used + cost <= this.costBudget)
  }

  /** Starts waiting tasks from the head, in arrival order, while the next one fits. */
  private startWaiting(): void {
    while (this.waiting.length > 0 && this.fits(this.waiting[0]!.cost)) {
      const next = this.waiting.shift()!
      this.active++
      this.used += next.cost
      next.start()
    }
  }
}
