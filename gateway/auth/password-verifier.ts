import { parseMosquittoHash, verifyMosquittoPassword } from '../../policies/mosquitto/index.js'
import { GatewayError } from '../errors.js'
import type { PasswordVerifier } from '../registry.js'
import { parsePasswordHash, verifyPassword } from './password.js'

/**
 * Turns a stored hash into a verifier, parsing it once (a bad hash fails at
 * load time, not at the first CONNECT): our `$scrypt$` hashes, and Mosquitto's
 * `$6$` (SHA-512) and `$7$` (PBKDF2-SHA512) as they are.
 */
export function passwordVerifier(encoded: string): PasswordVerifier {
  if (encoded.startsWith('$6$') || encoded.startsWith('$7$')) {
    const parsed = parseMosquittoHash(encoded)
    if (typeof parsed === 'string') {
      throw new GatewayError('GW_ERR_BAD_PASSWORD_HASH', `Mosquitto password hash: ${parsed}`)
    }
    return (password) => verifyMosquittoPassword(parsed, password)
  }
  const parsed = parsePasswordHash(encoded)
  return (password) => verifyPassword(password, parsed)
}
