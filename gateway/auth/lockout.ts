import { LRUCache } from 'lru-cache'

export interface LockoutSettings {
  maxFailures: number
  windowSeconds: number
  lockSeconds: number
  maxEntries: number
}

/**
 * How a client tried to prove who it is. Passwords can be guessed; a PSK
 * handshake, a client certificate and a one-time token prove a key no one
 * can guess, so they are never locked out (they can only be slowed by their
 * own source's failures).
 */
export type CredentialKind = 'password' | 'psk' | 'certificate' | 'token' | 'none'

export interface Attempt {
  kind: CredentialKind
  /** The claimed identity of that kind (username, PSK identity, certificate name); none for `none`. */
  identity?: string
  /** The source address. */
  address: string
  /** The identity names a configured device (its locks are kept apart from junk's). */
  known?: boolean
}

export type LockoutVerdict =
  | { locked: true; scope: 'address' | 'identity'; key: string; retryAfterMs: number }
  | { locked: false; delayMs: number }

/** Longest pause before answering a client that has been failing. */
const MAX_DELAY_MS = 2000
const MAX_IDENTITY = 256

const cut = (s: string) => s.slice(0, MAX_IDENTITY)
export const addressKey = (address: string): string => `addr:${address}`
/** One identity from one source: what locks (for passwords). */
export const pairKey = (kind: CredentialKind, identity: string, address: string): string =>
  `pair:${kind}:${cut(identity)}@${address}`
/** One identity from anywhere: what slows (never locks, so no one can lock a device out from elsewhere). */
export const identityKey = (kind: CredentialKind, identity: string): string => `id:${kind}:${cut(identity)}`

const provesKey = (kind: CredentialKind) => kind === 'psk' || kind === 'certificate' || kind === 'token'

/**
 * Counts authentication failures so that guessing passwords is slow and then
 * stopped, without letting anyone deny service to a device:
 *
 * - failures count per source address (`addr:`), per identity and source
 *   (`pair:`), and per identity from anywhere (`id:`), each kind of credential
 *   in its own namespace; a CONNECT without credentials counts for its address
 *   only (its client id is no identity);
 * - after `maxFailures` within the window an address, or an identity from one
 *   address, is locked for `lockSeconds`: its password attempts are refused,
 *   correct or not. Another source's password attempts for that identity are
 *   not (they are slowed by the identity's count, at most 2 s);
 * - a credential that proves a key (PSK, certificate, token) is never refused
 *   by a lock, and is slowed only by its own source's failures for it;
 * - counts live in an LRU of `maxEntries`; locks are kept apart (also at most
 *   `maxEntries`, the first to expire dropped first), and locks of identities
 *   that name a configured device apart again, so a spray of junk (unknown
 *   names, addresses) cannot evict the lock on a real device's attacker.
 */
export class Lockout {
  private readonly counts: LRUCache<string, { failures: number }>
  /** Locks of addresses and of unknown identities; and, apart, of identities that name a device. */
  private readonly locks = new Map<string, number>()
  private readonly deviceLocks = new Map<string, number>()

  constructor(
    private readonly settings: LockoutSettings,
    // Monotonic: a wall-clock step (NTP at a Pi's boot) must neither lift nor stretch a lock.
    private readonly now: () => number = () => performance.now(),
  ) {
    this.counts = new LRUCache<string, { failures: number }>({
      max: settings.maxEntries,
      ttl: settings.windowSeconds * 1000,
      ttlAutopurge: false,
      updateAgeOnGet: false,
      perf: { now },
    })
  }

  /** Entries held: counts and locks. */
  get size(): number {
    return this.counts.size + this.locks.size + this.deviceLocks.size
  }

  private lockedFor(key: string): number {
    for (const map of [this.deviceLocks, this.locks]) {
      const until = map.get(key)
      if (until === undefined) continue
      const left = until - this.now()
      if (left > 0) return left
      map.delete(key)
    }
    return 0
  }

  private failures(key: string): number {
    return this.counts.get(key)?.failures ?? 0
  }

  check(attempt: Attempt): LockoutVerdict {
    const addr = addressKey(attempt.address)
    const pair =
      attempt.identity !== undefined ? pairKey(attempt.kind, attempt.identity, attempt.address) : undefined
    if (!provesKey(attempt.kind)) {
      const scoped: Array<['address' | 'identity', string | undefined]> = [
        ['identity', pair],
        ['address', addr],
      ]
      for (const [scope, key] of scoped) {
        if (key === undefined) continue
        const retryAfterMs = this.lockedFor(key)
        if (retryAfterMs > 0) return { locked: true, scope, key, retryAfterMs }
      }
    }
    const counted = provesKey(attempt.kind)
      ? [pair]
      : [addr, pair, attempt.identity !== undefined ? identityKey(attempt.kind, attempt.identity) : undefined]
    let failures = 0
    for (const key of counted) if (key !== undefined) failures = Math.max(failures, this.failures(key))
    const delayMs = failures < 2 ? 0 : Math.min(MAX_DELAY_MS, 100 * 2 ** (failures - 2))
    return { locked: false, delayMs }
  }

  /** Records a failure; returns the keys that became locked by it. */
  fail(attempt: Attempt): string[] {
    const keys = [addressKey(attempt.address)]
    if (attempt.identity !== undefined) {
      keys.push(pairKey(attempt.kind, attempt.identity, attempt.address))
      keys.push(identityKey(attempt.kind, attempt.identity))
    }
    const locked: string[] = []
    for (const key of keys) {
      const entry = this.counts.get(key) ?? { failures: 0 }
      entry.failures++
      // Identities from anywhere only slow; an address, or an identity from one address, locks.
      if (
        !key.startsWith('id:') &&
        entry.failures >= this.settings.maxFailures &&
        this.lockedFor(key) === 0
      ) {
        this.lock(key, attempt.known === true && key.startsWith('pair:') ? this.deviceLocks : this.locks)
        entry.failures = 0
        locked.push(key)
      }
      this.counts.set(key, entry)
    }
    return locked
  }

  private lock(key: string, locks: Map<string, number>): void {
    if (locks.size >= this.settings.maxEntries) {
      const now = this.now()
      for (const [k, until] of locks) if (until <= now) locks.delete(k)
      if (locks.size >= this.settings.maxEntries) {
        // Map order is insertion order and every lock lasts lockSeconds: the first expires first.
        const first = locks.keys().next().value
        if (first !== undefined) locks.delete(first)
      }
    }
    locks.set(key, this.now() + this.settings.lockSeconds * 1000)
  }

  /**
   * A success clears the identity's count from this source (not the address's:
   * one good device must not hide a sprayer behind the same address).
   */
  succeed(attempt: Attempt): void {
    if (attempt.identity === undefined) return
    const pair = pairKey(attempt.kind, attempt.identity, attempt.address)
    if (this.lockedFor(pair) === 0) this.counts.delete(pair)
  }
}
