import { randomBytes } from 'node:crypto'
import { type LineLimits, type LineProblem, shorten, splitLines, trimC } from './lines.js'
import {
  type HashLimits,
  type MosquittoPasswordHash,
  parseMosquittoHash,
  verifyMosquittoPassword,
} from './password-hash.js'

/**
 * Mosquitto's `password_file`: one `username:hash` per line, read as
 * `pwfile__parse` (src/security_default.c, 2.0) does: `#` in the first column
 * is a comment; the username is everything before the first `:` and the hash
 * everything up to the next `:`, both trimmed of white space; each at most
 * 65,535 bytes. Mosquitto silently skips lines without `:` and drops entries
 * whose hash it cannot decode (logging an error); here every such line is a
 * problem with its number, and the hash is never quoted.
 */
export interface PasswordFileEntry {
  line: number
  username: string
  hash: MosquittoPasswordHash
}

export interface PasswordFileResult {
  entries: PasswordFileEntry[]
  problems: LineProblem[]
}

export type PasswordFileLimits = LineLimits & HashLimits

const MAX_FIELD_BYTES = 65_535

export function parsePasswordFile(
  input: string | Uint8Array,
  limits: PasswordFileLimits = {},
): PasswordFileResult {
  const { lines, problems } = splitLines(input, 'a password_file', limits)
  const entries: PasswordFileEntry[] = []
  const seen = new Map<string, number>()
  for (const { line, text } of lines) {
    if (text.startsWith('#') || trimC(text) === '') continue
    const colon = text.indexOf(':')
    const report = (message: string, shown: string) => problems.push({ line, text: shown, message })
    if (colon === -1) {
      report('has no `:`; expected username:hash (Mosquitto skips such lines silently)', '<redacted>')
      continue
    }
    const username = trimC(text.slice(0, colon))
    const rest = text.slice(colon + 1)
    const shown = `${shorten(username)}:<redacted>`
    if (username === '') {
      report('has an empty username', shown)
      continue
    }
    if (Buffer.byteLength(username, 'utf8') > MAX_FIELD_BYTES) {
      report(`has a username longer than ${MAX_FIELD_BYTES} bytes`, shown)
      continue
    }
    if (rest.includes(':')) {
      report('has a second `:`; expected username:hash (Mosquitto would ignore what follows it)', shown)
      continue
    }
    const hashText = trimC(rest)
    if (hashText === '') {
      report('has no password hash after the `:`', shown)
      continue
    }
    const hash = parseMosquittoHash(hashText, limits)
    if (typeof hash === 'string') {
      report(`for user ${JSON.stringify(username)} ${hash}`, shown)
      continue
    }
    const earlier = seen.get(username)
    if (earlier !== undefined) {
      report(`repeats user ${JSON.stringify(username)} from line ${earlier}; the first entry is kept`, shown)
      continue
    }
    seen.set(username, line)
    entries.push({ line, username, hash })
  }
  problems.sort((a, b) => a.line - b.line)
  return { entries, problems }
}

/**
 * Checks username and password against parsed entries. An unknown username
 * costs the same PBKDF2 work as a known one (Mosquitto's default `$7$`, 101
 * iterations), so timing does not tell the two apart.
 */
export class MosquittoPasswordVerifier {
  readonly #users: ReadonlyMap<string, MosquittoPasswordHash>
  readonly #limits: HashLimits
  readonly #dummy: MosquittoPasswordHash = {
    type: 'sha512-pbkdf2',
    iterations: 101,
    salt: randomBytes(12),
    hash: randomBytes(64),
  }

  constructor(entries: ReadonlyArray<PasswordFileEntry>, limits: HashLimits = {}) {
    this.#users = new Map(entries.map((e) => [e.username, e.hash]))
    this.#limits = limits
  }

  has(username: string): boolean {
    return this.#users.has(username)
  }

  async verify(username: string, password: string | Uint8Array): Promise<boolean> {
    const stored = this.#users.get(username)
    const ok = await verifyMosquittoPassword(stored ?? this.#dummy, password, this.#limits)
    return ok && stored !== undefined
  }
}
