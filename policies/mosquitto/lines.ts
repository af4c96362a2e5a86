import { MosquittoImportError } from './errors.js'
import { positiveInteger } from './option.js'

/** A line a parser skipped or could not read, with its 1-based number. */
export interface LineProblem {
  line: number
  /** The line as written (shortened, secrets redacted), for messages. */
  text: string
  message: string
}

export interface SourceLine {
  line: number
  text: string
}

export interface LineLimits {
  /** Largest input in bytes. Default 16 MiB. */
  maxBytes?: number
  /** Longest line in characters. Default 65,536 plus room for a keyword (Mosquitto caps topics at 65,535 bytes). */
  maxLineLength?: number
}

export const DEFAULT_MAX_BYTES = 16 * 1024 * 1024
export const DEFAULT_MAX_LINE_LENGTH = 65_536 + 64
const SHOWN_CHARS = 120

/**
 * Splits a Mosquitto text file into lines the way `fgets` does (on `\n`; a
 * `\r` before it is trailing white space to the parsers). Lines that are too
 * long, not UTF-8, hold a NUL (C string functions would cut the line there) or
 * start the file with a byte order mark become problems; the rest are returned
 * with their numbers. Throws MOSQ_ERR_INPUT_TOO_LARGE over the byte limit.
 */
export function splitLines(
  input: string | Uint8Array,
  what: string,
  limits: LineLimits = {},
): { lines: SourceLine[]; problems: LineProblem[] } {
  const maxBytes = positiveInteger('maxBytes', limits.maxBytes ?? DEFAULT_MAX_BYTES)
  const maxLineLength = positiveInteger('maxLineLength', limits.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH)
  const size = typeof input === 'string' ? Buffer.byteLength(input, 'utf8') : input.byteLength
  if (size > maxBytes) {
    throw new MosquittoImportError(
      'MOSQ_ERR_INPUT_TOO_LARGE',
      `Expected ${what} of at most ${maxBytes} bytes, got ${size} bytes`,
    )
  }
  const raw = typeof input === 'string' ? input.split('\n') : splitBytes(input)
  const lines: SourceLine[] = []
  const problems: LineProblem[] = []
  for (let i = 0; i < raw.length; i++) {
    const line = i + 1
    const decoded = typeof raw[i] === 'string' ? (raw[i] as string) : decodeUtf8(raw[i] as Uint8Array)
    if (decoded === undefined) {
      problems.push({ line, text: '', message: 'is not valid UTF-8' })
      continue
    }
    if (decoded.length > maxLineLength) {
      problems.push({
        line,
        text: shorten(decoded),
        message: `is ${decoded.length} characters long; expected at most ${maxLineLength}`,
      })
      continue
    }
    if (decoded.includes('\u0000')) {
      problems.push({
        line,
        text: shorten(decoded),
        message: 'contains a NUL character (Mosquitto would silently cut the line there)',
      })
      continue
    }
    if (line === 1 && decoded.startsWith('\uFEFF')) {
      problems.push({
        line,
        text: shorten(decoded.slice(1)),
        message:
          'starts with a byte order mark (U+FEFF), which Mosquitto reads as part of the line; save the file without it',
      })
      continue
    }
    lines.push({ line, text: decoded })
  }
  return { lines, problems }
}

/** The line for a message: at most 120 characters. */
export function shorten(text: string): string {
  return text.length <= SHOWN_CHARS ? text : `${text.slice(0, SHOWN_CHARS)}…`
}

/** C `isspace` in the "C" locale: space, \t, \n, \v, \f, \r. */
export function isCSpace(ch: string | undefined): boolean {
  return ch === ' ' || ch === '\t' || ch === '\n' || ch === '\v' || ch === '\f' || ch === '\r'
}

/** Removes trailing C white space, as Mosquitto does to every line it reads. */
export function trimEndC(text: string): string {
  let end = text.length
  while (end > 0 && isCSpace(text[end - 1])) end--
  return text.slice(0, end)
}

/** Mosquitto's `misc__trimblanks`: removes leading and trailing C white space. */
export function trimC(text: string): string {
  let start = 0
  while (start < text.length && isCSpace(text[start])) start++
  return trimEndC(text.slice(start))
}

function splitBytes(input: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = []
  let start = 0
  for (let i = input.indexOf(0x0a); i !== -1; i = input.indexOf(0x0a, start)) {
    out.push(input.subarray(start, i))
    start = i + 1
  }
  out.push(input.subarray(start))
  return out
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes)
  } catch {
    return undefined
  }
}
