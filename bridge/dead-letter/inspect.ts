import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { decodeMessage } from '../queue/record.js'
import { type DeadLetterReason, parseLog, replay } from './format.js'
import { DEAD_LETTER_LOG } from './store.js'

/** What `edge-gateway deadletter list` shows of a letter: metadata only, never the payload. */
export interface DeadLetterInfo {
  seq: number
  reason: DeadLetterReason
  detail: string
  state: 'held' | 'retrying'
  /** When it was first set aside (ISO 8601). */
  since: string
  device: string
  clientId: string
  /** The LAN topic it was published on. */
  topic: string
  qos: 0 | 1
  retain: boolean
  payloadBytes: number
  /** When the gateway accepted it (ISO 8601). */
  receivedAt: string
}

/**
 * Reads the dead letters of `dir` without changing anything (the gateway may be
 * running and writing: a torn last entry is simply not shown).
 */
export async function readDeadLetters(dir: string): Promise<DeadLetterInfo[]> {
  let buf: Buffer
  try {
    buf = await readFile(join(dir, DEAD_LETTER_LOG))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  const { letters } = replay(parseLog(buf).entries)
  return [...letters.values()]
    .sort((a, b) => a.seq - b.seq)
    .map((l) => {
      const m = decodeMessage(buf, l.record.start, l.record.end)
      return {
        seq: l.seq,
        reason: l.reason,
        detail: l.detail,
        state: l.state,
        since: new Date(l.since).toISOString(),
        device: m.deviceId,
        clientId: m.clientId,
        topic: m.topic,
        qos: m.qos,
        retain: m.retain,
        payloadBytes: m.payload.length,
        receivedAt: new Date(m.receivedAt).toISOString(),
      }
    })
}
