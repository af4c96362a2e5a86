/**
 * Payloads of PUBLISH packets the gateway acknowledged but refused (policy
 * `deniedPublish: drop`, rate limits). aedes copies the packet on its way to
 * subscribers but keeps the payload buffer, so `authorizeForward` can tell.
 */
const dropped = new WeakSet<object>()

export function markDropped(payload: Buffer | string): void {
  if (typeof payload === 'object') dropped.add(payload)
}

export function isDropped(payload: Buffer | string | undefined): boolean {
  return typeof payload === 'object' && payload !== null && dropped.has(payload)
}
