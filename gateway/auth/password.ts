import { randomBytes, type ScryptOptions, scrypt, timingSafeEqual } from 'node:crypto'
import { availableParallelism } from 'node:os'
import { Semaphore } from '../../core/semaphore.js'
import { GatewayError } from '../errors.js'
import { type Pepper, pepperPassword } from './pepper.js'

/**
 * Password hashes in two forms, salt and hash in unpadded base64:
 *
 * - `$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt>$<hash>`: scrypt(password, salt);
 * - `$scrypt-pepper$id=<pepper id>,ln=<log2 N>,r=<r>,p=<p>$<salt>$<hash>`:
 *   scrypt(HMAC-SHA256(pepper, password), salt), the pepper a 32-byte secret in
 *   its own file (`lan.passwordPepperFile`, gateway/auth/pepper.ts). Without the
 *   pepper such a hash cannot be checked offline at all, so it is written with
 *   cheaper parameters (PEPPERED_SCRYPT) and a reconnect storm costs less.
 *
 * scrypt runs on libuv's thread pool, so a verification never blocks the
 * broker's event loop.
 */
export interface ScryptParams {
  ln: number
  r: number
  p: number
}

/** `$scrypt$` hashes: 16 MiB and about 50 ms of one core each. */
export const DEFAULT_SCRYPT: ScryptParams = { ln: 14, r: 8, p: 1 }
/**
 * `$scrypt-pepper$` hashes: 1 MiB, a sixteenth of DEFAULT_SCRYPT's work, so that 1,000 password
 * devices reconnect within 10 s on 2 cores (bench/storm.mjs; docs/security.md, "Password hashes").
 */
export const PEPPERED_SCRYPT: ScryptParams = { ln: 10, r: 8, p: 1 }
const SALT_BYTES = 16
const HASH_BYTES = 32
/** Bounds that keep a hostile or mistyped hash from costing more than 256 MiB or seconds of work. */
const LIMITS = { ln: [10, 18], r: [1, 16], p: [1, 4] } as const
const MAX_SCRYPT_MEMORY = 256 * 1024 * 1024
const MAX_PASSWORD_BYTES = 1024

/**
 * scrypt runs at once by default, at most 2 (libuv's thread pool has 4 threads, shared with the
 * queue's writes and fdatasyncs). With only cheap `$scrypt-pepper$` hashes, the CPU cores less
 * one, at least 1: the other core stays with the event loop (the PUBACKs of the devices already
 * connected, TLS handshakes), and one slot still checks 1,000 devices in about 2 s. With any
 * `$scrypt$` hash (`slowHashes`), as many as there are cores, which `lan.passwordChecks.memoryMiB`
 * then bounds: at its default (16) one `$scrypt$` check runs at a time, 16 MiB; 32 runs two, which
 * halves a reconnect storm of such devices (docs/security.md, "Password hashes").
 * `lan.passwordChecks.concurrency` overrides it.
 */
export function defaultScryptConcurrency(cores: number = availableParallelism(), slowHashes = true): number {
  return slowHashes ? Math.max(1, Math.min(2, cores)) : Math.max(1, Math.min(2, cores - 1))
}

/** lan.passwordChecks.memoryMiB's default: one `$scrypt$` check (16 MiB) at a time. */
export const DEFAULT_PASSWORD_MEMORY_MIB = 16

/**
 * The scrypt runs of this process, bounded in number and in the memory they ask for together; a
 * burst of password CONNECTs waits its turn here, in arrival order (the refusal delay covers the
 * wait). Sized by the LAN gateway at start (lan.passwordChecks).
 */
export const scryptSlots = new Semaphore(
  defaultScryptConcurrency(),
  DEFAULT_PASSWORD_MEMORY_MIB * 1024 * 1024,
)

/**
 * The memory one scrypt run is counted for: its table V, 128 * r * N bytes (16 MiB for DEFAULT_SCRYPT,
 * 1 MiB for PEPPERED_SCRYPT). The run's other blocks add 128 * r * (p + 2), a few KiB.
 */
export function scryptMemoryBytes(params: ScryptParams): number {
  return 128 * params.r * 2 ** params.ln
}

/**
 * A password check given up before its scrypt started: the client closed while it waited for a
 * slot (in a reconnect storm, a device that timed out and will connect again). Not a failure.
 */
export class PasswordCheckAbandoned extends Error {
  constructor() {
    super('the client closed before its password check started')
    this.name = 'PasswordCheckAbandoned'
  }
}

function derive(
  password: Buffer,
  salt: Buffer,
  params: ScryptParams,
  length: number,
  wanted?: () => boolean,
): Promise<Buffer> {
  const N = 2 ** params.ln
  const options: ScryptOptions = { N, r: params.r, p: params.p, maxmem: 256 * N * params.r + 1024 * 1024 }
  return scryptSlots.run(
    () =>
      new Promise((resolve, reject) => {
        if (wanted && !wanted()) {
          reject(new PasswordCheckAbandoned())
          return
        }
        scrypt(password, salt, length, options, (err, key) => (err ? reject(err) : resolve(key)))
      }),
    scryptMemoryBytes(params),
  )
}

const encodeParams = (params: ScryptParams) => `ln=${params.ln},r=${params.r},p=${params.p}`

/** A `$scrypt$` hash of `password`; with `pepper`, a `$scrypt-pepper$` hash (default PEPPERED_SCRYPT). */
export async function hashPassword(
  password: string,
  params?: ScryptParams,
  pepper?: Pepper,
): Promise<string> {
  const salt = randomBytes(SALT_BYTES)
  const bytes = Buffer.from(password, 'utf8')
  if (pepper) {
    const used = params ?? PEPPERED_SCRYPT
    const hash = await derive(pepperPassword(pepper, bytes), salt, used, HASH_BYTES)
    return `$scrypt-pepper$id=${pepper.id},${encodeParams(used)}$${salt.toString('base64url')}$${hash.toString('base64url')}`
  }
  const used = params ?? DEFAULT_SCRYPT
  const hash = await derive(bytes, salt, used, HASH_BYTES)
  return `$scrypt$${encodeParams(used)}$${salt.toString('base64url')}$${hash.toString('base64url')}`
}

export interface ParsedHash {
  params: ScryptParams
  salt: Buffer
  hash: Buffer
  /** Set for a `$scrypt-pepper$` hash: the id of the pepper it was made with. */
  pepperId?: string
}

export function parsePasswordHash(encoded: string): ParsedHash {
  const parts = encoded.split('$')
  const fail = (why: string) =>
    new GatewayError(
      'GW_ERR_BAD_PASSWORD_HASH',
      `password hash ${why}; expected $scrypt$ln=N,r=N,p=N$<salt>$<hash> (or $scrypt-pepper$id=<pepper id>,ln=N,r=N,p=N$<salt>$<hash>) as written by \`edge-gateway device hash-password\``,
    )
  const peppered = parts[1] === 'scrypt-pepper'
  if (parts.length !== 5 || parts[0] !== '' || (parts[1] !== 'scrypt' && !peppered))
    throw fail('is not an scrypt hash')
  const match = (
    peppered ? /^id=([0-9a-f]{8}),ln=(\d+),r=(\d+),p=(\d+)$/ : /^()ln=(\d+),r=(\d+),p=(\d+)$/
  ).exec(parts[2] ?? '')
  if (!match) throw fail('has unreadable parameters')
  const params = { ln: Number(match[2]), r: Number(match[3]), p: Number(match[4]) }
  for (const key of ['ln', 'r', 'p'] as const) {
    const [lo, hi] = LIMITS[key]
    if (params[key] < lo || params[key] > hi) throw fail(`has ${key}=${params[key]} outside ${lo}..${hi}`)
  }
  if (128 * 2 ** params.ln * params.r > MAX_SCRYPT_MEMORY) throw fail('needs more than 256 MiB of memory')
  const salt = Buffer.from(parts[3] ?? '', 'base64url')
  const hash = Buffer.from(parts[4] ?? '', 'base64url')
  if (salt.length < 8 || hash.length < 16 || hash.length > 64)
    throw fail('has a salt or hash of the wrong size')
  return { params, salt, hash, ...(peppered && { pepperId: match[1] }) }
}

/**
 * Constant-time check of a password against a parsed hash. A `$scrypt-pepper$` hash needs the
 * pepper: without one it refuses every password (after the same work, so it is not faster).
 */
export async function verifyPassword(
  password: Buffer,
  parsed: ParsedHash,
  pepper?: Pepper,
  wanted?: () => boolean,
): Promise<boolean> {
  if (password.length > MAX_PASSWORD_BYTES) return false
  const peppered = parsed.pepperId !== undefined
  const input = peppered && pepper ? pepperPassword(pepper, password) : password
  const candidate = await derive(input, parsed.salt, parsed.params, parsed.hash.length, wanted)
  return timingSafeEqual(candidate, parsed.hash) && (!peppered || pepper !== undefined)
}

let dummy: ParsedHash | undefined
/**
 * Spends the same work as a real verification, so that an unknown username
 * cannot be told apart from a wrong password by timing.
 */
export async function verifyAgainstDummy(password: Buffer, wanted?: () => boolean): Promise<false> {
  dummy ??= {
    params: DEFAULT_SCRYPT,
    salt: randomBytes(SALT_BYTES),
    hash: randomBytes(HASH_BYTES),
  }
  await verifyPassword(password, dummy, undefined, wanted)
  return false
}
