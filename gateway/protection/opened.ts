/**
 * Payload buffers the gateway produced by opening a protected payload (a Will
 * opened at CONNECT is published later through the same hook): they are not
 * opened twice.
 */
const opened = new WeakSet<object>()

export function markOpened(payload: Buffer): void {
  opened.add(payload)
}

export function isOpened(payload: unknown): boolean {
  return typeof payload === 'object' && payload !== null && opened.has(payload)
}
