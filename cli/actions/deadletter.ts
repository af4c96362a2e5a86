import { DEAD_LETTER_REASONS, type DeadLetterReason } from '../../bridge/dead-letter/format.js'
import { type DeadLetterInfo, readDeadLetters } from '../../bridge/dead-letter/inspect.js'
import { type DeadLetterRequest, pendingRequests, writeRequest } from '../../bridge/dead-letter/requests.js'
import { deadLetterDir } from '../../bridge/dead-letter/store.js'
import { loadConfig } from '../../config/index.js'
import { EXIT_CONFIG, EXIT_RUNTIME } from '../fail.js'
import { readStatusFile } from '../status-file.js'
import { isRunning } from './status.js'

const TOPIC_CHARS = 80
const POLL_MS = 100

export interface ActionOptions {
  config: string
  all?: boolean
  reason?: string
  waitMs: string
}

function clip(text: string, chars: number): string {
  return text.length <= chars ? text : `${text.slice(0, chars - 3)}...`
}

/** The letters as a table: metadata only, never a payload. */
function table(letters: DeadLetterInfo[]): string {
  const rows = [
    ['gw-seq', 'state', 'reason', 'device', 'qos', 'bytes', 'received', 'topic', 'why'],
    ...letters.map((l) => [
      String(l.seq),
      l.state,
      l.reason,
      l.device,
      String(l.qos),
      String(l.payloadBytes),
      l.receivedAt,
      clip(l.topic, TOPIC_CHARS),
      l.detail,
    ]),
  ]
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  return rows
    .map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '))
    .join('\n')
}

function parseSeqs(args: string[]): number[] | string {
  const seqs: number[] = []
  for (const arg of args) {
    if (!/^\d{1,16}$/.test(arg) || !Number.isSafeInteger(Number(arg))) return `not a gw-seq: ${arg}`
    seqs.push(Number(arg))
  }
  return seqs
}

function usage(message: string): void {
  process.stderr.write(`edge-gateway: ${message}\n`)
  process.exitCode = EXIT_CONFIG
}

/**
 * `deadletter retry|drop`: checks what it names against the letters, leaves the
 * request for the gateway (the only writer of the dead letters), and, when the
 * gateway runs, waits until it took it.
 */
export async function act(
  action: DeadLetterRequest['action'],
  seqArgs: string[],
  options: ActionOptions,
): Promise<void> {
  const seqs = parseSeqs(seqArgs)
  if (typeof seqs === 'string') return usage(seqs)
  if (options.all === true && seqs.length > 0) return usage('give gw-seq numbers or --all, not both')
  if (options.all !== true && seqs.length === 0)
    return usage(`name the dead letters to ${action} (gw-seq numbers, or --all)`)
  if (options.reason !== undefined && !(DEAD_LETTER_REASONS as readonly string[]).includes(options.reason)) {
    return usage(`--reason must be one of ${DEAD_LETTER_REASONS.join(', ')}`)
  }
  // Digits only: Number() reads '', ' ', '0x10' and '1e3' as numbers too.
  const waitMs = /^\d{1,6}$/.test(String(options.waitMs)) ? Number(options.waitMs) : Number.NaN
  if (!Number.isSafeInteger(waitMs) || waitMs < 0 || waitMs > 600_000)
    return usage('--wait-ms must be 0 to 600000')
  const config = await loadConfig(options.config)
  const dir = deadLetterDir(config.gateway.stateDir)
  const letters = await readDeadLetters(dir)
  const known = new Map(letters.map((l) => [l.seq, l]))
  const unknown = seqs.filter((s) => !known.has(s))
  if (unknown.length > 0) {
    process.stderr.write(
      `edge-gateway: not a dead letter: gw-seq ${unknown.join(', ')} (edge-gateway deadletter list)\n`,
    )
    process.exitCode = EXIT_RUNTIME
    return
  }
  const reason = options.reason as DeadLetterReason | undefined
  const named = options.all ? letters.filter((l) => !reason || l.reason === reason).map((l) => l.seq) : seqs
  if (named.length === 0) {
    process.stdout.write(`${action}: no dead letters${reason ? ` of reason ${reason}` : ''}\n`)
    return
  }
  const request: DeadLetterRequest = options.all
    ? { action, all: true, ...(reason && { reason }) }
    : { action, seqs: named }
  const name = await writeRequest(dir, request)
  const what = `${action} of ${named.length} dead letter(s) (gw-seq ${named.join(', ')})`
  const status = await readStatusFile(config.gateway.stateDir)
  if (!status || !isRunning(status)) {
    process.stdout.write(
      `${what} requested; the gateway is not running: it applies the request when it starts\n`,
    )
    return
  }
  const deadline = Date.now() + waitMs
  while ((await pendingRequests(dir)).includes(name)) {
    if (Date.now() >= deadline) {
      process.stderr.write(
        `edge-gateway: the running gateway did not take the request within ${waitMs} ms; it stays waiting in ${dir}/requests and is applied when the gateway reads it\n`,
      )
      process.exitCode = EXIT_RUNTIME
      return
    }
    await new Promise((r) => setTimeout(r, POLL_MS))
  }
  process.stdout.write(
    `${what}: taken by the running gateway${action === 'retry' ? '; it sends them again with their gw-seq' : ''}\n`,
  )
}

export interface ListOptions {
  config: string
  json?: boolean
}

/** `deadletter list`: the letters' metadata, never a payload. */
export async function list(options: ListOptions): Promise<void> {
  const config = await loadConfig(options.config)
  const dir = deadLetterDir(config.gateway.stateDir)
  const letters = await readDeadLetters(dir)
  const waiting = await pendingRequests(dir)
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ letters, requestsWaiting: waiting.length }, null, 2)}\n`)
    return
  }
  if (letters.length > 0) process.stdout.write(`${table(letters)}\n`)
  const byReason = DEAD_LETTER_REASONS.map((r) => [r, letters.filter((l) => l.reason === r).length] as const)
    .filter(([, n]) => n > 0)
    .map(([r, n]) => `${r} ${n}`)
  process.stdout.write(
    `${letters.length} dead letter(s)${byReason.length > 0 ? `: ${byReason.join(', ')}` : ''}${waiting.length > 0 ? `; ${waiting.length} request(s) waiting for the gateway` : ''}\n`,
  )
}
