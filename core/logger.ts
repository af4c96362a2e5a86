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
 * Field names that must never reach a log line. Payloads are logged by size only,
 * secrets not at all; the redaction is a second fence behind the code that never
 * passes them.
 */
const REDACT = [
  'password',
  '*.password',
  'psk',
  '*.psk',
  'key',
  '*.key',
  'secret',
  '*.secret',
  'payload',
  '*.payload',
]

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? 'info'
  const base = { level, redact: { paths: REDACT, censor: '[redacted]' } }
  if (options.destination) return pino(base, options.destination)
  const pretty = options.pretty ?? Boolean(process.stdout.isTTY)
  if (pretty) {
    return pino({
      ...base,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } },
    })
  }
  return pino(base)
}
