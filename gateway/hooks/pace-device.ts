import type { SecurityEventFields, SecurityEvents } from '../../core/security-events.js'
import type { DevicePacer } from '../device-pacer.js'

/** The connection's stream as the broker reads it (gateway/protocol/guard.ts). */
export interface Holdable {
  hold(): void
  release(): void
}

/**
 * Takes the device's turn of lan.deviceRate for one PUBLISH or SUBSCRIBE filter (`what`):
 * undefined when it may go at once; else a promise that resolves at its turn, after a
 * `device_rate_paced` security event (the security log's limiter keeps it to a few lines
 * per device). While it waits, `conn` reads nothing more from the socket (back-pressure: TCP
 * slows the device down, and what it sent waits in the kernel, not in the gateway). A packet
 * whose turn is now still goes after the device's packets held before it.
 */
export function paceDevice(
  pacer: DevicePacer,
  security: SecurityEvents,
  device: string,
  fields: () => SecurityEventFields,
  what: string,
  conn?: Partial<Holdable>,
): Promise<void> | undefined {
  const waitMs = pacer.reserve(device)
  if (waitMs === 0) return holdWhile(pacer.behind(device), conn)
  const { messagesPerSecond, burst } = pacer.rate
  const ms = Math.round(waitMs)
  security.report(
    'device_rate_paced',
    { device, ...fields(), rule: 'lan.deviceRate', messagesPerSecond, burst, waitMs: ms },
    `device over its lan.deviceRate (${messagesPerSecond}/s, bursts of ${burst}): ${what} held ${ms} ms, the connection is read no further meanwhile`,
  )
  return holdWhile(pacer.wait(waitMs, device), conn)
}

function holdWhile(
  wait: Promise<void> | undefined,
  conn: Partial<Holdable> | undefined,
): Promise<void> | undefined {
  if (!wait || !conn?.hold || !conn.release) return wait
  conn.hold()
  const release = conn.release.bind(conn)
  return wait.finally(release)
}
