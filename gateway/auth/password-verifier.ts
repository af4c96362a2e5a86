import { createHash } from 'node:crypto'
import { parseMosquittoHash, verifyMosquittoPassword } from '../../policies/mosquitto/index.js'
import { GatewayError } from '../errors.js'
import type { PasswordVerifier } from '../registry.js'
import { parsePasswordHash, verifyPassword } from './password.js'
import type { Pepper } from './pepper.js'

/**
 * Turns a stored hash into a verifier, parsing it once (a bad hash fails at
 * load time, not at the first CONNECT): our `$scrypt$` and `$scrypt-pepper$`
 * hashes, and Mosquitto's `$6$` (SHA-512) and `$7$` (PBKDF2-SHA512) as they are.
 * A `$scrypt-pepper$` hash needs `pepper`, the very one it was made with.
 */
export function passwordVerifier(encoded: string, pepper?: Pepper): PasswordVerifier {
  if (encoded.startsWith('$6$') || encoded.startsWith('$7$')) {
    const parsed = parseMosquittoHash(encoded)
    if (typeof parsed === 'string') {
      throw new GatewayError('GW_ERR_BAD_PASSWORD_HASH', `Mosquitto password hash: ${parsed}`)
    }
    return (password) => verifyMosquittoPassword(parsed, password)
  }
  const parsed = parsePasswordHash(encoded)
  if (parsed.pepperId !== undefined) {
    if (!pepper) {
      throw new GatewayError(
        'GW_ERR_BAD_PASSWORD_HASH',
        'a $scrypt-pepper$ password hash needs the pepper it was made with: set lan.passwordPepperFile',
      )
    }
    if (parsed.pepperId !== pepper.id) {
      throw new GatewayError(
        'GW_ERR_BAD_PASSWORD_HASH',
        `a $scrypt-pepper$ password hash was made with pepper ${parsed.pepperId}, but lan.passwordPepperFile holds pepper ${pepper.id}`,
      )
    }
  }
  return (password, wanted) => verifyPassword(password, parsed, pepper, wanted)
}

/**
 * What tells one stored hash from another, for the verified-password cache: the same text,
 * the same fingerprint; a new hash (a new salt at least), another one.
 */
export function hashFingerprint(encoded: string): string {
  return createHash('sha256').update(encoded, 'utf8').digest('base64url')
}
