import type { PolicyEngine } from '../policies/engine.js'
import { RateLimiter } from '../policies/rate-limiter.js'
import { SubscriberLimits } from '../policies/subscriber-limits.js'
import { Lockout, type LockoutSettings } from './auth/lockout.js'
import { VerifiedPasswords } from './auth/verified-passwords.js'
import type { DeviceRegistry } from './registry.js'

/** PUBLISH packets one device may send over all its connections (lan.deviceRate), as a token bucket. */
export interface DeviceRate {
  readonly messagesPerSecond: number
  readonly burst: number
}

/** The defaults of lan.deviceRate. */
export const DEFAULT_DEVICE_RATE: DeviceRate = { messagesPerSecond: 1000, burst: 2000 }

/** Who may connect and what they may do: replaced as a whole on reload. */
export interface AccessSnapshot {
  readonly registry: DeviceRegistry
  readonly engine: PolicyEngine
  /** lan.deviceRate; default DEFAULT_DEVICE_RATE. */
  readonly deviceRate?: DeviceRate
  /** Some device has a `$scrypt$` (unpeppered, expensive) hash; it sizes the default scrypt concurrency. Default true. */
  readonly slowPasswordHashes?: boolean
}

/**
 * The gateway's access state: the current registry and policy (swapped
 * atomically on reload) and the stateful limits that outlive a reload
 * (lockout) or are rebuilt with it (rate buckets, subscriber counts).
 */
export class AccessControl {
  private snapshot: AccessSnapshot
  readonly lockout: Lockout
  /** Keyed by device and rule index: a new policy renumbers rules, so it gets new buckets. */
  rateLimiter = new RateLimiter()
  /** The buckets of lan.deviceRate, one per device; rebuilt with the rate on reload. */
  deviceRates = new RateLimiter()
  subscriberLimits = new SubscriberLimits()
  /** Passwords verified lately, per device (lan.passwordChecks.cacheEntries); outlives reloads. */
  readonly passwords: VerifiedPasswords

  constructor(initial: AccessSnapshot, lockout: LockoutSettings, passwordCacheEntries = 0) {
    this.snapshot = initial
    this.lockout = new Lockout(lockout)
    this.passwords = new VerifiedPasswords(passwordCacheEntries)
  }

  get registry(): DeviceRegistry {
    return this.snapshot.registry
  }

  get engine(): PolicyEngine {
    return this.snapshot.engine
  }

  get deviceRate(): DeviceRate {
    return this.snapshot.deviceRate ?? DEFAULT_DEVICE_RATE
  }

  replace(next: AccessSnapshot): void {
    this.snapshot = next
    this.passwords.retain(next.registry)
    this.rateLimiter = new RateLimiter()
    this.deviceRates = new RateLimiter()
  }
}
