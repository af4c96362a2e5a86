import { inspect } from 'node:util'
import { VpnError } from './errors.js'

export const REDACTED = '[redacted]'

/** A WireGuard key: 32 bytes, standard base64 with padding (44 characters). */
const KEY_SHAPE = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/

/** Whether `text` is a well-formed WireGuard key (private, public or preshared). */
export function isWireGuardKey(text: string): boolean {
  return KEY_SHAPE.test(text)
}

/**
 * A private or preshared key. It prints, serialises and inspects as `[redacted]`, so passing one
 * to a logger or an error message by mistake leaks nothing; `reveal()` is for stdin only.
 */
export class SecretKey {
  readonly #value: string

  constructor(value: string, what = 'key') {
    if (!isWireGuardKey(value)) {
      throw new VpnError(
        'VPN_ERR_BAD_KEY',
        `Expected the ${what} to be a WireGuard key (32 bytes in base64, 44 characters), got ${value.length} characters`,
      )
    }
    this.#value = value
  }

  reveal(): string {
    return this.#value
  }

  toString(): string {
    return REDACTED
  }

  toJSON(): string {
    return REDACTED
  }

  [inspect.custom](): string {
    return `SecretKey(${REDACTED})`
  }
}
