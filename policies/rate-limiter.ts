import { LRUCache } from 'lru-cache'
import { TokenBucket } from './token-bucket.js'
import type { CompiledRule } from './types.js'

export type RateVerdict = 'ok' | 'messages' | 'bytes'

export interface RateLimiterOptions {
  /** Most (device, rule) pairs kept; the least recently used is forgotten (its buckets refill). */
  max?: number
  /** Monotonic milliseconds, for tests. */
  now?: () => number
}

interface Entry {
  readonly deviceId: string
  readonly messages: TokenBucket | undefined
  readonly bytes: TokenBucket | undefined
}

/** Separates the device id from the rule index in keys; device ids never contain NUL. */
const SEP = '\u0000'

/**
 * The `rate` limits of rules, as token buckets per device and rule, keyed by
 * `${deviceId}\u0000${ruleIndex}`. Memory is bounded by `max` keys. Rule
 * indexes change on reload: make a new limiter with the new engine.
 */
export class RateLimiter {
  private readonly entries: LRUCache<string, Entry>
  private readonly keysByDevice = new Map<string, Set<string>>()
  private readonly now: () => number

  constructor(options: RateLimiterOptions = {}) {
    this.now = options.now ?? (() => performance.now())
    // Bounded by maxSize at one per entry rather than by `max`: with `max`, lru-cache allocates
    // its arrays for every entry up front (about 2.7 MiB for 100,000, held from the start by a
    // gateway with a handful of devices); with maxSize they grow with the entries.
    this.entries = new LRUCache<string, Entry>({
      maxSize: options.max ?? 100_000,
      sizeCalculation: () => 1,
      dispose: (entry, key) => this.unlink(entry.deviceId, key),
    })
  }

  /**
   * Counts one message of `payloadBytes` against the rule's buckets for this
   * device. A message refused for bytes has still used a message token.
   */
  check(deviceId: string, rule: CompiledRule, payloadBytes: number): RateVerdict {
    const rate = rule.rate
    if (!rate || (!rate.messages && !rate.bytes)) return 'ok'
    const key = `${deviceId}${SEP}${rule.index}`
    let entry = this.entries.get(key)
    if (!entry) {
      entry = {
        deviceId,
        messages: rate.messages && new TokenBucket(rate.messages.perSecond, rate.messages.burst, this.now),
        bytes: rate.bytes && new TokenBucket(rate.bytes.perSecond, rate.bytes.burst, this.now),
      }
      this.entries.set(key, entry)
      let keys = this.keysByDevice.get(deviceId)
      if (!keys) {
        keys = new Set()
        this.keysByDevice.set(deviceId, keys)
      }
      keys.add(key)
    }
    if (entry.messages && !entry.messages.take(1)) return 'messages'
    if (entry.bytes && !entry.bytes.take(payloadBytes)) return 'bytes'
    return 'ok'
  }

  /** Drops every bucket of the device (it disconnected or was removed). */
  forget(deviceId: string): void {
    const keys = this.keysByDevice.get(deviceId)
    if (!keys) return
    for (const key of [...keys]) this.entries.delete(key)
    this.keysByDevice.delete(deviceId)
  }

  /** Number of (device, rule) pairs held. */
  get size(): number {
    return this.entries.size
  }

  has(deviceId: string, ruleIndex: number): boolean {
    return this.entries.has(`${deviceId}${SEP}${ruleIndex}`)
  }

  private unlink(deviceId: string, key: string): void {
    const keys = this.keysByDevice.get(deviceId)
    if (!keys) return
    keys.delete(key)
    if (keys.size === 0) this.keysByDevice.delete(deviceId)
  }
}
