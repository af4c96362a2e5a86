import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
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
}

/** Seconds between writes of the status file. */
export const STATUS_INTERVAL_MS = 2000

/** Writes the status file now and every STATUS_INTERVAL_MS until stopped (then once more as 'stopped'). */
export function writeStatusPeriodically(
  stateDir: string,
  snapshot: () => Omit<StatusSnapshot, 'updatedAt' | 'state'>,
): { stop: () => Promise<void> } {
  const file = statusFilePath(stateDir)
  let writing = Promise.resolve()
  const write = (state: StatusSnapshot['state']) => {
    writing = writing
      .then(() =>
        writePublicFile(
          file,
          `${JSON.stringify({ ...snapshot(), state, updatedAt: new Date().toISOString() }, null, 2)}\n`,
        ),
      )
      .catch(() => undefined)
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
