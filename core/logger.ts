import { createRequire } from 'node:module'
import { type DestinationStream, type Logger, pino } from 'pino'

export type { Logger } from 'pino'

export interface LoggerOptions {
  level?: string
  /** Human-readable output (pino-pretty); default: only when stdout is a terminal. */
  pretty?: boolean
  /** Where JSON lines go; default stdout. Tests pass a stream to read them back. */
  destination?: DestinationStream
}

/**
 * Field names that must never reach a log line, at any depth (compared case-insensitively).
 * Payloads are logged by size only, secrets not at all; the redaction is a second fence
 * behind the code that never passes them.
 */
export const REDACTED_KEYS: ReadonlySet<string> = new Set(
  [
    'password',
    'passwordHash',
    'psk',
    'key',
    'keyHex',
    'privateKey',
    'presharedKey',
    'secret',
    'masterSecret',
    'masterSalt',
    'token',
    'payload',
    'plaintext',
  ].map((k) => k.toLowerCase()),
)
const CENSOR = '[redacted]'
/** Deeper than this, a value is replaced whole (a log record is never that deep on purpose). */
const MAX_DEPTH = 8

/** A copy of `value` with every field named in REDACTED_KEYS censored, however deeply nested. */
export function redactDeep(value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== 'object') return value
  if (value instanceof Error || Buffer.isBuffer(value) || value instanceof Date) return value
  if (depth >= MAX_DEPTH) return '[too deep]'
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, depth + 1))
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value)) {
    out[k] = REDACTED_KEYS.has(k.toLowerCase()) ? CENSOR : redactDeep(v, depth + 1)
  }
  return out
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? 'info'
  const base = {
    level,
    formatters: { log: (record: Record<string, unknown>) => redactDeep(record) as Record<string, unknown> },
  }
  if (options.destination) return pino(base, options.destination)
  const pretty = options.pretty ?? Boolean(process.stdout.isTTY)
  if (pretty) {
    const stream = prettyStream()
    if (stream) return pino(base, stream)
    if (options.pretty === true) {
      process.stderr.write(
        'edge-gateway: log.pretty is set, but pino-pretty is not installed beside the gateway (npm install pino-pretty in its folder): logging JSON lines\n',
      )
    }
  }
  return pino(base)
}

/**
 * pino-pretty as a stream in this process (loaded only when asked for: a terminal, or
 * `log.pretty`), rather than as a pino transport: a transport runs in a worker thread that loads
 * pino's worker file and pino-pretty by path, which the bundled CLI could not give it
 * (scripts/bundle.mjs). Human-readable output is for a person at a terminal; a service logs
 * JSON lines, which pino writes itself.
 */
function prettyStream(): DestinationStream | undefined {
  let build: (options: object) => DestinationStream
  try {
    build = createRequire(import.meta.url)('pino-pretty') as typeof build
  } catch (err) {
    // The installed package carries no dependency (the CLI is one bundle): pino-pretty is there in a
    // checkout (npm run lab), and wherever someone installs it; without it, JSON lines.
    if ((err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') return undefined
    throw err
  }
  return build({ colorize: true, translateTime: 'SYS:HH:MM:ss.l' })
}
