import { BodyProtection } from './envelope.js'

const NAMES: Record<BodyProtection, string> = {
  [BodyProtection.plain]: 'plain (signed, not sealed)',
  [BodyProtection.hpke]: 'HPKE-sealed',
  [BodyProtection.device]: "the device's own sealed bytes (end-to-end)",
}

export function describeProtection(protection: BodyProtection): string {
  return NAMES[protection]
}

/**
 * Whether a message accepted under `accepted` may go out under `now`: the same
 * protection, or more (plain to HPKE-sealed). Never less (HPKE to plain), and never
 * across kinds: the device's own bytes are not the gateway's plaintext, so a message
 * may not move between end-to-end and client-to-broker either way (the cloud would
 * read ciphertext as a plain body, or take the gateway's plaintext for the device's seal).
 */
export function keepsProtection(accepted: BodyProtection, now: BodyProtection): boolean {
  return accepted === now || (accepted === BodyProtection.plain && now === BodyProtection.hpke)
}
