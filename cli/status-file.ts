import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from '../core/logger.js'
import { writePublicFile } from '../pki/files.js'

/** Where a running gateway writes its status; `edge-gateway status` reads it. */
export function statusFilePath(stateDir: string): string {
  return join(stateDir, 'status.json')
}

export interface StatusSnapshot {
  gateway: string
  pid: number
  state: 'running' | 'stopped'
  updatedAt: string
  startedAt: string
  lan: { connectedClients: number }
  bridge: unknown
  /** The process's memory (bytes), as `process.memoryUsage()` reads it at the write. */
  memory?: NodeJS.MemoryUsage
}

/** Seconds between writes of the status file. */
export const STATUS_INTERVAL_MS = 2000

/** Milliseconds between log lines while the status file keeps failing (the first failure is logged at once). */
export const STATUS_FAILURE_LOG_MS = 60_000

/**
 * Writes the status file now and every STATUS_INTERVAL_MS until stopped (then once more as
 * 'stopped'). A write that fails (a full disk) is tried again at the next interval; the
 * failure is logged at warn with its errno, then at most once a minute while it lasts
 * (with the count of failures), and the first write that works again is logged at info.
 */
export function writeStatusPeriodically(
  stateDir: string,
  snapshot: () => Omit<StatusSnapshot, 'updatedAt' | 'state'>,
  logger?: Logger,
): { stop: () => Promise<void> } {
  const file = statusFilePath(stateDir)
  let writing = Promise.resolve()
  let failures = 0
  let lastLogged = Number.NEGATIVE_INFINITY
  const failed = (err: unknown) => {
    failures++
    const now = Date.now()
    if (now - lastLogged < STATUS_FAILURE_LOG_MS) return
    lastLogged = now
    const cause = ((err as Error).cause ?? err) as NodeJS.ErrnoException
    logger?.warn(
      { path: file, code: cause?.code, errno: cause?.errno, failures, retryInMs: STATUS_INTERVAL_MS },
      `status file not written (${cause?.code ?? cause?.message}): \`edge-gateway status\` shows stale data; trying again every ${STATUS_INTERVAL_MS / 1000} s`,
    )
  }
  const written = () => {
    if (failures === 0) return
    logger?.info({ path: file, failures }, `status file written again after ${failures} failed attempt(s)`)
    failures = 0
    lastLogged = Number.NEGATIVE_INFINITY
  }
  const write = (state: StatusSnapshot['state']) => {
    writing = writing
      .then(() =>
        writePublicFile(
          file,
          `${JSON.stringify(
            { ...snapshot(), memory: process.memoryUsage(), state, updatedAt: new Date().toISOString() },
            null,
            2,
          )}\n`,
        ),
      )
      .then(written, failed)
    return writing
  }
  void write('running')
  const timer = setInterval(() => void write('running'), STATUS_INTERVAL_MS)
  timer.unref()
  return {
    stop: async () => {
      clearInterval(timer)
      await write('stopped')
    },
  }
}

export async function readStatusFile(stateDir: string): Promise<StatusSnapshot | undefined> {
  try {
    const text = await readFile(statusFilePath(stateDir), 'utf8')
    if (text.length > 1024 * 1024) return undefined
    return JSON.parse(text) as StatusSnapshot
  } catch {
    return undefined
  }
}
