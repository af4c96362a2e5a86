import type { Logger } from './logger.js'
import { type Metrics, series } from './metrics.js'

/** Every kind of security event the gateway reports. Stable names: dashboards and alerts key on them. */
export const SECURITY_EVENT_NAMES = [
  'retained_limit',
  'subscription_limit',
  'tls_handshake_failed',
  'connection_refused',
  'psk_unknown_identity',
  'psk_retired_identity',
  'auth_bad_password',
  'auth_unknown_user',
  'auth_missing_credentials',
  'auth_identity_mismatch',
  'client_id_refused',
  'publish_denied',
  'subscribe_denied',
  'forward_denied',
  'uplink_queue_full',
  'auth_unknown_certificate',
  'auth_locked_out',
  'will_denied',
  'rate_limited',
  'flood_disconnect',
  'device_rate_paced',
  'subscriber_limit',
  'device_removed',
  'psk_retired',
  'subscription_revoked',
  'payload_rejected',
  'auth_bad_token',
  'will_rejected',
  'command_rejected',
  'cloud_message_rejected',
  'protocol_violation',
  'packet_too_large',
  'slow_consumer',
  'rotation_refused',
  'rotation_rolled_back',
  'observability_refused',
] as const

export type SecurityEventName = (typeof SECURITY_EVENT_NAMES)[number]

export interface SecurityEventFields {
  /** Device id when known; otherwise the claimed identity (username, PSK identity). */
  device?: string
  clientId?: string
  username?: string
  pskIdentity?: string
  remoteAddress?: string
  listener?: string
  topic?: string
  bytes?: number
  reason?: string
  [extra: string]: unknown
}

export interface SecurityLogLimit {
  /** Log lines per event and identity within one window; past it, lines are counted, not written. */
  burst: number
  windowMs: number
  /** Event/identity pairs tracked at once (oldest forgotten first). */
  maxKeys?: number
}

export const DEFAULT_SECURITY_LOG_LIMIT: SecurityLogLimit = { burst: 50, windowMs: 10_000, maxKeys: 10_000 }

interface Window {
  startedAt: number
  logged: number
  suppressed: number
}

/** One security event as the status page lists it: no message text, no payload, a few fields. */
export interface RecentSecurityEvent {
  at: number
  event: SecurityEventName
  /** The device, or the claimed identity (username, PSK identity), or the address. */
  who: string
  reason?: string
  listener?: string
}

/** Events kept for the status page, newest last. */
export const RECENT_EVENTS = 20

/** The longest string value of an event's fields as logged (a topic or a username may be 65,535 bytes). */
export const MAX_FIELD_CHARS = 256

/**
 * The fields with every string over MAX_FIELD_CHARS cut there and marked with its length: the
 * log is limited in lines per identity, so each line must be bounded in bytes too, or a client
 * that sends long topics or usernames fills the disk within the line budget.
 */
export function clipped<T extends object>(fields: T): T {
  let out: Record<string, unknown> | undefined
  for (const [key, value] of Object.entries(fields)) {
    if (typeof value !== 'string' || value.length <= MAX_FIELD_CHARS) continue
    out ??= { ...fields } as Record<string, unknown>
    out[key] = `${value.slice(0, MAX_FIELD_CHARS)}... (${value.length} characters)`
  }
  return (out ?? fields) as T
}

/**
 * Reports security events: one structured warning per event, with an `event`
 * field and the device identity, and a counter per event name. Every event is
 * counted; the log lines of one event for one identity (device, else claimed
 * identity, else address) are limited to `burst` per window, and the number
 * left out is said in one line when the next window starts (or at `flush`),
 * so a flooding device cannot fill the disk with warnings.
 * Callers must not pass secrets or payloads; only sizes.
 */
export class SecurityEvents {
  private readonly windows = new Map<string, Window>()
  private readonly recentEvents: RecentSecurityEvent[] = []
  private readonly limit: Required<SecurityLogLimit>

  constructor(
    private readonly logger: Logger,
    private readonly metrics: Metrics,
    limit: SecurityLogLimit = DEFAULT_SECURITY_LOG_LIMIT,
    /** Monotonic, for the log windows: a wall-clock step must not mute an identity's lines. */
    private readonly now: () => number = () => performance.now(),
  ) {
    this.limit = { maxKeys: 10_000, ...limit }
    for (const event of SECURITY_EVENT_NAMES) metrics.declare(series('security_events_total', { event }))
    metrics.declare('security_log_lines_suppressed_total')
  }

  report(event: SecurityEventName, reported: SecurityEventFields, message: string): void {
    this.metrics.increment(series('security_events_total', { event }))
    const fields = clipped(reported)
    const who = fields.device ?? fields.username ?? fields.pskIdentity ?? fields.remoteAddress ?? ''
    const key = `${event}\u0000${who}`
    const t = this.now()
    this.recentEvents.push({
      at: Date.now(),
      event,
      who,
      ...(typeof fields.reason === 'string' && { reason: fields.reason.slice(0, 64) }),
      ...(typeof fields.listener === 'string' && { listener: fields.listener }),
    })
    if (this.recentEvents.length > RECENT_EVENTS) this.recentEvents.shift()
    let window = this.windows.get(key)
    if (window && t - window.startedAt >= this.limit.windowMs) {
      this.summarize(key, window)
      window = undefined
    }
    if (!window) {
      if (this.windows.size >= this.limit.maxKeys) this.forgetOldest()
      window = { startedAt: t, logged: 0, suppressed: 0 }
      this.windows.set(key, window)
    }
    if (window.logged < this.limit.burst) {
      window.logged++
      this.logger.warn({ security: true, event, ...fields }, message)
      return
    }
    window.suppressed++
    this.metrics.increment('security_log_lines_suppressed_total')
  }

  /** The last RECENT_EVENTS events, oldest first (whether their log line was written or not). */
  recent(): readonly RecentSecurityEvent[] {
    return this.recentEvents
  }

  /** Writes the summaries of windows that left lines out (at shutdown, and in tests). */
  flush(): void {
    for (const [key, window] of this.windows) this.summarize(key, window)
    this.windows.clear()
  }

  private summarize(key: string, window: Window): void {
    this.windows.delete(key)
    if (window.suppressed === 0) return
    const [event, who] = key.split('\u0000') as [string, string]
    this.logger.warn(
      { security: true, event, suppressed: window.suppressed, identity: who, windowMs: this.limit.windowMs },
      `${window.suppressed} more ${event} event(s) for ${who || 'an unknown identity'} were counted but not logged`,
    )
  }

  private forgetOldest(): void {
    const first = this.windows.entries().next().value
    if (first) this.summarize(first[0], first[1])
  }
}
