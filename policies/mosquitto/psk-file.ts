import { type LineLimits, type LineProblem, shorten, splitLines, trimC } from './lines.js'
import { positiveInteger } from './option.js'

/**
 * Mosquitto's `psk_file`: one `identity:hexkey` per line, read by the same
 * `pwfile__parse` as the password file (src/security_default.c, 2.0), then
 * `psk__file_parse` refuses an empty key or one with non-hex characters (and
 * with it the whole file). Here each bad line is a problem with its number and
 * the key is never quoted.
 *
 * Stricter than Mosquitto: an odd number of hex digits (OpenSSL's BN_hex2bn
 * would read a leading 0 nibble) and keys over `maxKeyBytes` (Mosquitto hands
 * OpenSSL at most its PSK buffer, PSK_MAX_PSK_LEN, 256 bytes in OpenSSL 1.1) are problems.
 */
export interface PskFileEntry {
  line: number
  identity: string
  key: Buffer
}

export interface PskFileResult {
  entries: PskFileEntry[]
  problems: LineProblem[]
}

export interface PskFileLimits extends LineLimits {
  /** Longest key in bytes. Default 256. */
  maxKeyBytes?: number
}

const MAX_IDENTITY_BYTES = 65_535
const DEFAULT_MAX_KEY_BYTES = 256

export function parsePskFile(input: string | Uint8Array, limits: PskFileLimits = {}): PskFileResult {
  const { lines, problems } = splitLines(input, 'a psk_file', limits)
  const maxKeyBytes = positiveInteger('maxKeyBytes', limits.maxKeyBytes ?? DEFAULT_MAX_KEY_BYTES)
  const entries: PskFileEntry[] = []
  const seen = new Map<string, number>()
  for (const { line, text } of lines) {
    if (text.startsWith('#') || trimC(text) === '') continue
    const colon = text.indexOf(':')
    if (colon === -1) {
      problems.push({
        line,
        text: '<redacted>',
        message: 'has no `:`; expected identity:hexkey (Mosquitto skips such lines silently)',
      })
      continue
    }
    const identity = trimC(text.slice(0, colon))
    const rest = text.slice(colon + 1)
    const report = (message: string) =>
      problems.push({ line, text: `${shorten(identity)}:<redacted>`, message })
    if (identity === '') {
      report('has an empty identity')
      continue
    }
    if (Buffer.byteLength(identity, 'utf8') > MAX_IDENTITY_BYTES) {
      report(`has an identity longer than ${MAX_IDENTITY_BYTES} bytes`)
      continue
    }
    if (rest.includes(':')) {
      report('has a second `:`; expected identity:hexkey (Mosquitto would ignore what follows it)')
      continue
    }
    const hex = trimC(rest)
    if (hex === '') {
      report(`has an empty key for identity ${JSON.stringify(identity)}`)
      continue
    }
    if (!/^[0-9a-fA-F]+$/.test(hex)) {
      report(`has a key for identity ${JSON.stringify(identity)} with characters other than 0-9, a-f, A-F`)
      continue
    }
    if (hex.length % 2 !== 0) {
      report(
        `has a key for identity ${JSON.stringify(identity)} with an odd number (${hex.length}) of hex digits`,
      )
      continue
    }
    if (hex.length / 2 > maxKeyBytes) {
      report(
        `has a ${hex.length / 2}-byte key for identity ${JSON.stringify(identity)}; expected at most ${maxKeyBytes}`,
      )
      continue
    }
    const earlier = seen.get(identity)
    if (earlier !== undefined) {
      report(`repeats identity ${JSON.stringify(identity)} from line ${earlier}; the first entry is kept`)
      continue
    }
    seen.set(identity, line)
    entries.push({ line, identity, key: Buffer.from(hex, 'hex') })
  }
  problems.sort((a, b) => a.line - b.line)
  return { entries, problems }
}
