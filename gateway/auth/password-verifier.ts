import type { PasswordVerifier } from '../registry.js'
import { parsePasswordHash, verifyPassword } from './password.js'

/**
 * Turns a stored hash into a verifier, parsing it once (a bad hash fails at
 * load time, not at the first CONNECT).
 */
export function passwordVerifier(encoded: string): PasswordVerifier {
  const parsed = parsePasswordHash(encoded)
  return (password) => verifyPassword(password, parsed)
}
