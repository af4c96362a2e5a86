import { LRUCache } from 'lru-cache'

export interface LockoutSettings {
  maxFailures: number
  windowSeconds: number
  lockSeconds: number
  maxEntries: number
}

interface Entry {
  failures: number
  lockedUntil: number
}

export type LockoutVerdict =
  | { locked: true; key: string; retryAfterMs: number }
  | { locked: false; delayMs: number }

/** Longest pause before answering a client that has been failing. */
const MAX_DELAY_MS = 2000

/**
 * Counts authentication failures per identity (`id:<name>`) and per source
 * address (`addr:<ip>`). Failing clients are slowed (an exponential pause before
 * the answer), and after `maxFailures` within the window they are refused for
 * `lockSeconds`, correct credentials or not. Memory is bounded: the table is an
 * LRU of at most `maxEntries`, and entries expire after the window or the lock.
 */
export class Lockout {
  private readonly table: LRUCache<string, Entry>

  constructor(
    private readonly settings: LockoutSettings,
    private readonly now: () => number = Date.now,
  ) {
    this.table = new LRUCache<string, Entry>({
      max: settings.maxEntries,
      ttl: Math.max(settings.windowSeconds, settings.lockSeconds) * 1000,
      ttlAutopurge: false,
      updateAgeOnGet: false,
    })
  }

  get size(): number {
    return this.table.size
  }

  check(keys: ReadonlyArray<string>): LockoutVerdict {
    let failures = 0
    for (const key of keys) {
      const entry = this.table.get(key)
      if (!entry) continue
      const retryAfterMs = entry.lockedUntil - this.now()
      if (retryAfterMs > 0) return { locked: true, key, retryAfterMs }
      failures = Math.max(failures, entry.failures)
    }
    const delayMs = failures < 2 ? 0 : Math.min(MAX_DELAY_MS, 100 * 2 ** (failures - 2))
    return { locked: false, delayMs }
  }

  /** Records a failure; returns the keys that became locked by it. */
  fail(keys: ReadonlyArray<string>): string[] {
    const locked: string[] = []
    for (const key of keys) {
      const entry = this.table.get(key) ?? { failures: 0, lockedUntil: 0 }
      entry.failures++
      if (entry.failures >= this.settings.maxFailures && entry.lockedUntil <= this.now()) {
        entry.lockedUntil = this.now() + this.settings.lockSeconds * 1000
        entry.failures = 0
        locked.push(key)
      }
      this.table.set(key, entry, {
        ttl:
          (entry.lockedUntil > this.now() ? this.settings.lockSeconds : this.settings.windowSeconds) * 1000,
      })
    }
    return locked
  }

  /** A success clears the identity's count (not the address's: one good device must not hide a sprayer). */
  succeed(identityKey: string): void {
    const entry = this.table.get(identityKey)
    if (entry && entry.lockedUntil <= this.now()) this.table.delete(identityKey)
  }
}

export const identityKey = (name: string): string => `id:${name.slice(0, 256)}`
export const addressKey = (address: string): string => `addr:${address}`
