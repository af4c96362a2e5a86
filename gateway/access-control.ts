import type { PolicyEngine } from '../policies/engine.js'
import { RateLimiter } from '../policies/rate-limiter.js'
import { SubscriberLimits } from '../policies/subscriber-limits.js'
import { Lockout, type LockoutSettings } from './auth/lockout.js'
import { VerifiedPasswords } from './auth/verified-passwords.js'
import { DevicePacer } from './device-pacer.js'
import type { DeviceRegistry } from './registry.js'

/** PUBLISH packets one device may send over all its connections (lan.deviceRate): a rate and a burst. */
export interface DeviceRate {
  readonly messagesPerSecond: number
  readonly burst: number
}

/** The defaults of lan.deviceRate. */
export const DEFAULT_DEVICE_RATE: DeviceRate = { messagesPerSecond: 100, burst: 200 }

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
  /** lan.deviceRate as back-pressure; a reload that changes the rate releases what waits and starts afresh. */
  devicePacer: DevicePacer
  subscriberLimits = new SubscriberLimits()
  /** Passwords verified lately, per device (lan.passwordChecks.cacheEntries); outlives reloads. */
  readonly passwords: VerifiedPasswords

  constructor(initial: AccessSnapshot, lockout: LockoutSettings, passwordCacheEntries = 0) {
    this.snapshot = initial
    this.lockout = new Lockout(lockout)
    this.devicePacer = new DevicePacer(this.deviceRate)
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
    const rate = this.deviceRate
    const pacer = this.devicePacer
    if (rate.messagesPerSecond !== pacer.rate.messagesPerSecond || rate.burst !== pacer.rate.burst) {
      pacer.release()
      this.devicePacer = new DevicePacer(rate)
    } else {
      for (const id of pacer.devices()) if (!next.registry.byDeviceId(id)) pacer.forget(id)
    }
  }
}
