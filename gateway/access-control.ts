import type { PolicyEngine } from '../policies/engine.js'
import { RateLimiter } from '../policies/rate-limiter.js'
import { SubscriberLimits } from '../policies/subscriber-limits.js'
import { Lockout, type LockoutSettings } from './auth/lockout.js'
import type { DeviceRegistry } from './registry.js'

/** Who may connect and what they may do: replaced as a whole on reload. */
export interface AccessSnapshot {
  readonly registry: DeviceRegistry
  readonly engine: PolicyEngine
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
  subscriberLimits = new SubscriberLimits()

  constructor(initial: AccessSnapshot, lockout: LockoutSettings) {
    this.snapshot = initial
    this.lockout = new Lockout(lockout)
  }

  get registry(): DeviceRegistry {
    return this.snapshot.registry
  }

  get engine(): PolicyEngine {
    return this.snapshot.engine
  }

  replace(next: AccessSnapshot): void {
    this.snapshot = next
    this.rateLimiter = new RateLimiter()
  }
}
