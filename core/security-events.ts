import type { Logger } from './logger.js'
import { type Metrics, series } from './metrics.js'

/** Every kind of security event the gateway reports. Stable names: dashboards and alerts key on them. */
export const SECURITY_EVENT_NAMES = [
  'tls_handshake_failed',
  'psk_unknown_identity',
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
  'subscriber_limit',
  'device_removed',
  'subscription_revoked',
  'payload_rejected',
  'auth_bad_token',
  'will_rejected',
  'command_rejected',
  'cloud_message_rejected',
  'protocol_violation',
  'packet_too_large',
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

/**
 * Reports security events: one structured warning per event, with an `event`
 * field and the device identity, and a counter per event name.
 * Callers must not pass secrets or payloads; only sizes.
 */
export class SecurityEvents {
  constructor(
    private readonly logger: Logger,
    private readonly metrics: Metrics,
  ) {
    for (const event of SECURITY_EVENT_NAMES) metrics.declare(series('security_events_total', { event }))
  }

  report(event: SecurityEventName, fields: SecurityEventFields, message: string): void {
    this.metrics.increment(series('security_events_total', { event }))
    this.logger.warn({ security: true, event, ...fields }, message)
  }
}
