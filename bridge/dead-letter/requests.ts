import { randomBytes } from 'node:crypto'
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { DIR_MODE, FILE_MODE } from '../queue/io.js'
import { DEAD_LETTER_REASONS, type DeadLetterReason } from './format.js'

/**
 * What an operator asks of the dead letters (`edge-gateway deadletter retry|drop`):
 * `seqs` names letters by gw-seq; `all` takes every letter (of `reason`, when given).
 */
export interface DeadLetterRequest {
  action: 'retry' | 'drop'
  seqs?: number[]
  all?: boolean
  reason?: DeadLetterReason
}

/**
 * Requests are files in `<dead-letter folder>/requests/`, one per request, made
 * whole by a rename: the gateway is the only writer of the dead-letter log, so a
 * command run beside it (or while it is stopped) leaves its request there, and the
 * gateway applies it within a second (or when it starts) and deletes the file.
 */
export const REQUESTS_DIR = 'requests'
const NAME = /^\d{13}-[0-9a-f]{12}\.json$/
const MAX_REQUEST_BYTES = 1024 * 1024

export function requestsDir(dir: string): string {
  return join(dir, REQUESTS_DIR)
}

/** Leaves `request` for the gateway; returns the file's name. */
export async function writeRequest(dir: string, request: DeadLetterRequest): Promise<string> {
  const folder = requestsDir(dir)
  await mkdir(folder, { recursive: true, mode: DIR_MODE })
  const name = `${String(Date.now()).padStart(13, '0')}-${randomBytes(6).toString('hex')}.json`
  const tmp = join(folder, `.${name}.tmp`)
  const handle = await open(tmp, 'wx', FILE_MODE)
  try {
    await handle.writeFile(JSON.stringify(request))
    await handle.sync()
  } finally {
    await handle.close()
  }
  await rename(tmp, join(folder, name))
  return name
}

/** Names of the requests waiting in `dir`, oldest first. */
export async function pendingRequests(dir: string): Promise<string[]> {
  try {
    return (await readdir(requestsDir(dir))).filter((n) => NAME.test(n)).sort()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
}

/** Checks a parsed request; a message saying what is wrong, or the request. */
export function validateRequest(value: unknown): DeadLetterRequest | string {
  if (typeof value !== 'object' || value === null) return 'not an object'
  const r = value as Record<string, unknown>
  if (r.action !== 'retry' && r.action !== 'drop') return 'action must be retry or drop'
  if (r.seqs !== undefined) {
    if (!Array.isArray(r.seqs) || !r.seqs.every((s) => Number.isSafeInteger(s) && (s as number) >= 0))
      return 'seqs must be gw-seq numbers'
  }
  if (r.all !== undefined && typeof r.all !== 'boolean') return 'all must be true or false'
  if (r.reason !== undefined && !(DEAD_LETTER_REASONS as readonly unknown[]).includes(r.reason))
    return `reason must be one of ${DEAD_LETTER_REASONS.join(', ')}`
  if (r.all !== true && (r.seqs === undefined || r.seqs.length === 0)) return 'names no letter'
  return {
    action: r.action,
    ...(r.seqs !== undefined && { seqs: r.seqs as number[] }),
    ...(r.all === true && { all: true }),
    ...(r.reason !== undefined && { reason: r.reason as DeadLetterReason }),
  }
}

/** Reads request `name`: the request, or why it is refused. */
export async function readRequest(dir: string, name: string): Promise<DeadLetterRequest | string> {
  const text = await readFile(join(requestsDir(dir), name), 'utf8')
  if (text.length > MAX_REQUEST_BYTES) return 'larger than 1 MiB'
  try {
    return validateRequest(JSON.parse(text))
  } catch {
    return 'not JSON'
  }
}

export async function removeRequest(dir: string, name: string): Promise<void> {
  await rm(join(requestsDir(dir), name), { force: true })
}
