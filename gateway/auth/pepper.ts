import { createHmac, createSecretKey, type KeyObject } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { secretFileProblem } from '../../config/secret-files.js'
import { GatewayError } from '../errors.js'

/** A pepper is 32 bytes, written as 64 hex digits. */
export const PEPPER_BYTES = 32
const MAX_PEPPER_FILE_BYTES = 1024
/** What the pepper id is an HMAC of: it names a pepper without saying anything about it. */
const ID_LABEL = 'edge-gateway password pepper id'

/**
 * The secret of `lan.passwordPepperFile`, mixed into `$scrypt-pepper$` hashes:
 * scrypt(HMAC-SHA256(pepper, password), salt). The key stays in a KeyObject,
 * which neither logs nor serializes its bytes. `id` (8 hex digits, an HMAC of a
 * fixed label) is written into each hash, so a hash made with another pepper is
 * refused when the config is loaded instead of refusing its device at CONNECT.
 */
export interface Pepper {
  readonly key: KeyObject
  readonly id: string
}

export function pepperFrom(bytes: Buffer): Pepper {
  if (bytes.length !== PEPPER_BYTES)
    throw new Error(`Expected a ${PEPPER_BYTES}-byte pepper, got ${bytes.length}`)
  const key = createSecretKey(bytes)
  const id = createHmac('sha256', key).update(ID_LABEL).digest().subarray(0, 4).toString('hex')
  return { key, id }
}

/** What scrypt is given in place of the password: HMAC-SHA256(pepper, password). */
export function pepperPassword(pepper: Pepper, password: Buffer): Buffer {
  return createHmac('sha256', pepper.key).update(password).digest()
}

/**
 * Reads a pepper file: 64 hex digits (white space around them ignored), mode 0600 or tighter,
 * checked here as well as by the config check, since `device hash-password` reads it directly.
 * Errors name the file, never its content.
 */
export async function readPepperFile(file: string): Promise<Pepper> {
  const problem = await secretFileProblem(file)
  if (problem) throw new GatewayError('GW_ERR_BAD_PEPPER_FILE', `password pepper: ${problem}`)
  const raw = await readFile(file)
  const text = raw
    .subarray(0, MAX_PEPPER_FILE_BYTES + 1)
    .toString('utf8')
    .trim()
  if (raw.length > MAX_PEPPER_FILE_BYTES || !/^[0-9a-fA-F]{64}$/.test(text)) {
    throw new GatewayError(
      'GW_ERR_BAD_PEPPER_FILE',
      `${file}: expected a password pepper of 32 bytes as 64 hex digits (\`edge-gateway device pepper\` writes one), got ${raw.length} bytes of something else`,
    )
  }
  return pepperFrom(Buffer.from(text, 'hex'))
}
