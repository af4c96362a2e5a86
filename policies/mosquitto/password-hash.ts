import { createHash, pbkdf2, timingSafeEqual } from 'node:crypto'
import { positiveInteger } from './option.js'

/**
 * Mosquitto's password hashes, as `mosquitto_passwd` writes them and the
 * broker checks them (src/security_default.c in 2.0: unpwd__decode_passwords,
 * pw__digest, mosquitto_unpwd_check_default):
 *
 * - `$6$<salt>$<hash>`: hash = SHA-512(password || salt), one round.
 * - `$7$<iterations>$<salt>$<hash>`: hash = PBKDF2-HMAC-SHA512(password, salt, iterations), 64 bytes.
 *
 * Salt and hash are standard base64 with padding (OpenSSL's BIO_f_base64).
 * The hash is 64 bytes. Mosquitto 2.0 writes and accepts a 12-byte salt; later
 * versions (libcommon pw__decode_sha512*) also accept a 64-byte salt.
 * `mosquitto_passwd` 2.0 writes `$7$` with 101 iterations by default.
 */
export type MosquittoPasswordHash =
  | { type: 'sha512'; salt: Buffer; hash: Buffer }
  | { type: 'sha512-pbkdf2'; iterations: number; salt: Buffer; hash: Buffer }

export interface HashLimits {
  /** Highest `$7$` iteration count accepted, so a hostile file cannot stall logins. Default 10,000,000. */
  maxIterations?: number
}

export const DEFAULT_MAX_ITERATIONS = 10_000_000
const HASH_BYTES = 64
const SALT_BYTES: ReadonlySet<number> = new Set([12, 64])
/** MQTT's limit for a password (a two-byte length prefix). */
const MAX_PASSWORD_BYTES = 65_535
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/**
 * Parses the hash part of a password_file line. Returns the hash, or a
 * message saying what is wrong (never quoting the hash).
 */
export function parseMosquittoHash(text: string, limits: HashLimits = {}): MosquittoPasswordHash | string {
  const maxIterations = positiveInteger('maxIterations', limits.maxIterations ?? DEFAULT_MAX_ITERATIONS)
  const parts = text.split('$')
  if (parts[0] !== '' || (parts[1] !== '6' && parts[1] !== '7')) {
    return 'is not a Mosquitto password hash; expected $6$<salt>$<hash> or $7$<iterations>$<salt>$<hash> (plain-text passwords are not accepted: hash them with mosquitto_passwd -U)'
  }
  const pbkdf2 = parts[1] === '7'
  const expectedParts = pbkdf2 ? 5 : 4
  if (parts.length !== expectedParts) {
    return `has ${parts.length - 1} \`$\`-separated fields; expected ${pbkdf2 ? '$7$<iterations>$<salt>$<hash>' : '$6$<salt>$<hash>'}`
  }
  let iterations = 0
  if (pbkdf2) {
    const digits = parts[2]!
    if (!/^[0-9]{1,10}$/.test(digits))
      return `has iteration count ${JSON.stringify(digits)}; expected a positive integer`
    iterations = Number(digits)
    if (iterations < 1 || iterations > maxIterations) {
      return `has ${iterations} iterations; expected 1 to ${maxIterations}`
    }
  }
  const salt = decodeBase64(parts[expectedParts - 2]!)
  if (salt === undefined || !SALT_BYTES.has(salt.length)) {
    return `has a salt that is not 12 or 64 bytes of base64${salt === undefined ? '' : ` (got ${salt.length} bytes)`}`
  }
  const hash = decodeBase64(parts[expectedParts - 1]!)
  if (hash === undefined || hash.length !== HASH_BYTES) {
    return `has a hash that is not ${HASH_BYTES} bytes of base64${hash === undefined ? '' : ` (got ${hash.length} bytes)`}`
  }
  return pbkdf2 ? { type: 'sha512-pbkdf2', iterations, salt, hash } : { type: 'sha512', salt, hash }
}

/**
 * Whether `password` matches `stored`, as Mosquitto decides it, compared in
 * constant time. PBKDF2 runs on libuv's thread pool, so it does not block the
 * event loop. Mosquitto hashes the password as a C string (up to the first NUL
 * byte); a password containing NUL is refused here instead, as are passwords
 * over MQTT's 65,535 bytes.
 */
export async function verifyMosquittoPassword(
  stored: MosquittoPasswordHash,
  password: string | Uint8Array,
  limits: HashLimits = {},
): Promise<boolean> {
  const maxIterations = positiveInteger('maxIterations', limits.maxIterations ?? DEFAULT_MAX_ITERATIONS)
  const bytes = typeof password === 'string' ? Buffer.from(password, 'utf8') : Buffer.from(password)
  const usable = bytes.length <= MAX_PASSWORD_BYTES && !bytes.includes(0)
  if (stored.type === 'sha512-pbkdf2' && (stored.iterations < 1 || stored.iterations > maxIterations))
    return false
  const candidate = await digest(stored, usable ? bytes : Buffer.alloc(0))
  // Always compare, so a refused password costs the same as a wrong one.
  const same = candidate.length === stored.hash.length && timingSafeEqual(candidate, stored.hash)
  return same && usable
}

function digest(stored: MosquittoPasswordHash, password: Buffer): Promise<Buffer> {
  if (stored.type === 'sha512') {
    return Promise.resolve(createHash('sha512').update(password).update(stored.salt).digest())
  }
  return new Promise((resolve, reject) => {
    pbkdf2(password, stored.salt, stored.iterations, HASH_BYTES, 'sha512', (err, key) =>
      err ? reject(err) : resolve(key),
    )
  })
}

function decodeBase64(text: string): Buffer | undefined {
  if (text.length === 0 || !BASE64.test(text)) return undefined
  return Buffer.from(text, 'base64')
}
