import type { Client } from 'aedes'
import { clipped } from '../core/security-events.js'

/** Why the gateway itself closed a connection: logged with the disconnect. */
export interface CloseReason {
  /** Stable: `payload_failures`, `flooding`, `publish_denied`, `uplink_full`, `device_removed`, `psk_retired`. */
  reason: string
  /** What happened, for the log line: "21 refused payloads within 10 s (limit 20)". */
  detail: string
  [field: string]: unknown
}

const reasons = new WeakMap<Client, CloseReason>()

/** Records why the gateway is about to close this client's connection. */
export function setCloseReason(client: Client, reason: CloseReason): void {
  // Its fields go to a log line: a topic in them may be 65,535 bytes.
  reasons.set(client, clipped(reason))
}

export function closeReasonOf(client: Client): CloseReason | undefined {
  return reasons.get(client)
}
