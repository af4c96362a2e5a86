import { randomBytes, type ScryptOptions, scrypt, timingSafeEqual } from 'node:crypto'
import { Semaphore } from '../../core/semaphore.js'
import { GatewayError } from '../errors.js'

/**
 * Password hashes in the form `$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt>$<hash>`,
 * salt and hash in unpadded base64. scrypt runs on libuv's thread pool, so a
 * verification never blocks the broker's event loop.
 */
export interface ScryptParams {
  ln: number
  r: number
  p: number
}

export const DEFAULT_SCRYPT: ScryptParams = { ln: 14, r: 8, p: 1 }
const SALT_BYTES = 16
const HASH_BYTES = 32
/** Bounds that keep a hostile or mistyped hash from costing more than 256 MiB or seconds of work. */
const LIMITS = { ln: [10, 18], r: [1, 16], p: [1, 4] } as const
const MAX_SCRYPT_MEMORY = 256 * 1024 * 1024
const MAX_PASSWORD_BYTES = 1024

/**
 * scrypt runs on libuv's thread pool (4 threads by default), which the queue's writes and
 * fdatasyncs share: at most 2 scrypt runs at once, so a burst of password CONNECTs cannot hold
 * every device's PUBACK behind it. The rest wait their turn (the refusal delay covers the wait).
 */
export const scryptSlots = new Semaphore(2)

function derive(password: Buffer, salt: Buffer, params: ScryptParams, length: number): Promise<Buffer> {
  const N = 2 ** params.ln
  const options: ScryptOptions = { N, r: params.r, p: params.p, maxmem: 256 * N * params.r + 1024 * 1024 }
  return scryptSlots.run(
    () =>
      new Promise((resolve, reject) => {
        scrypt(password, salt, length, options, (err, key) => (err ? reject(err) : resolve(key)))
      }),
  )
}

export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  const salt = randomBytes(SALT_BYTES)
  const hash = await derive(Buffer.from(password, 'utf8'), salt, params, HASH_BYTES)
  return `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${salt.toString('base64url')}$${hash.toString('base64url')}`
}

interface ParsedHash {
  params: ScryptParams
  salt: Buffer
  hash: Buffer
}

export function parsePasswordHash(encoded: string): ParsedHash {
  const parts = encoded.split('$')
  const fail = (why: string) =>
    new GatewayError(
      'GW_ERR_BAD_PASSWORD_HASH',
      `password hash ${why}; expected $scrypt$ln=N,r=N,p=N$<salt>$<hash> as written by \`edge-gateway device hash-password\``,
    )
  if (parts.length !== 5 || parts[0] !== '' || parts[1] !== 'scrypt') throw fail('is not an scrypt hash')
  const match = /^ln=(\d+),r=(\d+),p=(\d+)$/.exec(parts[2] ?? '')
  if (!match) throw fail('has unreadable parameters')
  const params = { ln: Number(match[1]), r: Number(match[2]), p: Number(match[3]) }
  for (const key of ['ln', 'r', 'p'] as const) {
    const [lo, hi] = LIMITS[key]
    if (params[key] < lo || params[key] > hi) throw fail(`has ${key}=${params[key]} outside ${lo}..${hi}`)
  }
  if (128 * 2 ** params.ln * params.r > MAX_SCRYPT_MEMORY) throw fail('needs more than 256 MiB of memory')
  const salt = Buffer.from(parts[3] ?? '', 'base64url')
  const hash = Buffer.from(parts[4] ?? '', 'base64url')
  if (salt.length < 8 || hash.length < 16 || hash.length > 64)
    throw fail('has a salt or hash of the wrong size')
  return { params, salt, hash }
}

/** Constant-time check of a password against a parsed hash. */
export async function verifyPassword(password: Buffer, parsed: ParsedHash): Promise<boolean> {
  if (password.length > MAX_PASSWORD_BYTES) return false
  const candidate = await derive(password, parsed.salt, parsed.params, parsed.hash.length)
  return timingSafeEqual(candidate, parsed.hash)
}

let dummy: ParsedHash | undefined
/**
 * Spends the same work as a real verification, so that an unknown username
 * cannot be told apart from a wrong password by timing.
 */
export async function verifyAgainstDummy(password: Buffer): Promise<false> {
  dummy ??= {
    params: DEFAULT_SCRYPT,
    salt: randomBytes(SALT_BYTES),
    hash: randomBytes(HASH_BYTES),
  }
  await verifyPassword(password, dummy)
  return false
}
