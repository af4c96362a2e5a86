import { crc32 } from '../queue/crc32.js'
import type { QueueEntry } from '../queue/queue.js'
import { encodeRecord, frameAt, recordSeq } from '../queue/record.js'
import { DEAD_LETTER_REASONS, type DeadLetterReason } from './reasons.js'

export { DEAD_LETTER_REASONS, type DeadLetterReason } from './reasons.js'

/** What an entry of the log says about a dead letter. */
export type LetterChange = DeadLetterReason | 'retrying' | 'dropped' | 'delivered'

const CHANGE_CODES: Record<LetterChange, number> = {
  no_mapping: 1,
  protection_changed: 2,
  unsendable: 3,
  cloud_refused: 4,
  retrying: 16,
  dropped: 17,
  delivered: 18,
}
const CHANGES = new Map(Object.entries(CHANGE_CODES).map(([k, v]) => [v, k as LetterChange]))

export function isReason(change: LetterChange): change is DeadLetterReason {
  return (DEAD_LETTER_REASONS as readonly string[]).includes(change)
}

/**
 * The dead-letter log (`<stateDir>/dead-letter/dead-letter.log`): append-only entries,
 * little-endian:
 *
 * | offset | bytes | field |
 * | --- | --- | --- |
 * | 0 | 4 | magic 0x314c4445 ("EDL1") |
 * | 4 | 4 | CRC-32 of everything from offset 8 to the end of the entry |
 * | 8 | 4 | length L of the entry from offset 12 |
 * | 12 | 1 | kind: 1 a letter, 2 a change of a letter's state |
 * | 13 | 1 | the reason it was set aside (1 no_mapping, 2 protection_changed, 3 unsendable, 4 cloud_refused), or the new state (16 retrying, 17 dropped, 18 delivered) |
 * | 14 | 8 | gw-seq of the message |
 * | 22 | 8 | when, ms since the epoch (float64) |
 * | 30 | 2 | length D of the detail |
 * | 32 | D | detail (UTF-8): why, in words |
 * | 32 + D | ... | a letter only: the queue record of the message (bridge/queue/record.ts), gw-seq included |
 *
 * A letter's state is its last entry: a reason (held, waiting for the operator), retrying
 * (the bridge sends it again), or dropped / delivered (gone: compaction removes it).
 */
export const ENTRY_MAGIC = 0x314c4445
export const ENTRY_HEADER_BYTES = 32
const KIND_LETTER = 1
const KIND_CHANGE = 2
const MAX_DETAIL_BYTES = 1024
const TWO_32 = 2 ** 32
const MAGIC_BYTES = Buffer.from([0x45, 0x44, 0x4c, 0x31])

export interface LogEntry {
  kind: 'letter' | 'change'
  change: LetterChange
  seq: number
  at: number
  detail: string
  /** Where the entry starts in the log and how long it is. */
  offset: number
  length: number
  /** A letter: where its queue record lies within the log. */
  record?: { start: number; end: number }
}

function clip(detail: string): Buffer {
  const buf = Buffer.from(detail, 'utf8')
  return buf.length <= MAX_DETAIL_BYTES ? buf : buf.subarray(0, MAX_DETAIL_BYTES)
}

function header(length: number, kind: number, change: LetterChange, seq: number, at: number, detail: Buffer) {
  const buf = Buffer.allocUnsafe(length)
  buf.writeUInt32LE(ENTRY_MAGIC, 0)
  buf.writeUInt32LE(length - 12, 8)
  buf[12] = kind
  buf[13] = CHANGE_CODES[change]
  buf.writeUInt32LE(seq % TWO_32, 14)
  buf.writeUInt32LE(Math.floor(seq / TWO_32), 18)
  buf.writeDoubleLE(at, 22)
  buf.writeUInt16LE(detail.length, 30)
  detail.copy(buf, 32)
  return buf
}

function seal(buf: Buffer): Buffer {
  buf.writeUInt32LE(crc32(buf.subarray(8)), 4)
  return buf
}

/** A letter: `entry` set aside for `reason` at `at`. Throws QUEUE_ERR_RECORD when it cannot be stored. */
export function encodeLetter(
  entry: QueueEntry,
  reason: DeadLetterReason,
  detail: string,
  at: number,
): Buffer {
  return letterOf(encodeRecord(entry.seq, entry.message), entry.seq, reason, detail, at)
}

/** A letter around `record`, the queue record (gw-seq `seq`) of the message. */
export function letterOf(
  record: Buffer,
  seq: number,
  reason: DeadLetterReason,
  detail: string,
  at: number,
): Buffer {
  const d = clip(detail)
  const buf = header(ENTRY_HEADER_BYTES + d.length + record.length, KIND_LETTER, reason, seq, at, d)
  record.copy(buf, ENTRY_HEADER_BYTES + d.length)
  return seal(buf)
}

/** A change of the state of letter `seq`. */
export function encodeChange(seq: number, change: LetterChange, detail: string, at: number): Buffer {
  const d = clip(detail)
  return seal(header(ENTRY_HEADER_BYTES + d.length, KIND_CHANGE, change, seq, at, d))
}

type Parsed = { status: 'ok'; entry: LogEntry } | { status: 'short' } | { status: 'bad' }

function parseAt(buf: Buffer, pos: number): Parsed {
  if (buf.length - pos < ENTRY_HEADER_BYTES) return { status: 'short' }
  if (buf.readUInt32LE(pos) !== ENTRY_MAGIC) return { status: 'bad' }
  const length = 12 + buf.readUInt32LE(pos + 8)
  if (length < ENTRY_HEADER_BYTES) return { status: 'bad' }
  if (buf.length - pos < length) return { status: 'short' }
  const end = pos + length
  if (crc32(buf.subarray(pos + 8, end)) !== buf.readUInt32LE(pos + 4)) return { status: 'bad' }
  const kind = buf[pos + 12]
  const change = CHANGES.get(buf[pos + 13]!)
  const detailLength = buf.readUInt16LE(pos + 30)
  const detailEnd = pos + ENTRY_HEADER_BYTES + detailLength
  if (!change || detailEnd > end || (kind !== KIND_LETTER && kind !== KIND_CHANGE)) return { status: 'bad' }
  const seq = buf.readUInt32LE(pos + 14) + buf.readUInt32LE(pos + 18) * TWO_32
  const entry: LogEntry = {
    kind: kind === KIND_LETTER ? 'letter' : 'change',
    change,
    seq,
    at: buf.readDoubleLE(pos + 22),
    detail: buf.toString('utf8', pos + ENTRY_HEADER_BYTES, detailEnd),
    offset: pos,
    length,
  }
  if (kind === KIND_LETTER) {
    // A letter carries exactly one valid queue record with the same gw-seq, and only reasons.
    const frame = frameAt(buf, detailEnd, end)
    if (frame.status !== 'ok' || frame.end !== end || recordSeq(buf, detailEnd) !== seq)
      return { status: 'bad' }
    if (!isReason(change)) return { status: 'bad' }
    entry.record = { start: detailEnd, end }
  }
  return { status: 'ok', entry }
}

export interface ParsedLog {
  entries: LogEntry[]
  /** Bytes up to the end of the last valid entry: what follows is a torn or damaged tail. */
  validBytes: number
  /** Damaged stretches skipped between valid entries. */
  damaged: number
}

/** Every valid entry of the log, in order; damage between entries is skipped and counted. */
export function parseLog(buf: Buffer): ParsedLog {
  const entries: LogEntry[] = []
  let pos = 0
  let validBytes = 0
  let damaged = 0
  while (pos < buf.length) {
    const parsed = parseAt(buf, pos)
    if (parsed.status === 'ok') {
      entries.push(parsed.entry)
      pos += parsed.entry.length
      validBytes = pos
      continue
    }
    // Find the next entry that parses; none: the rest is a torn tail.
    let next = buf.indexOf(MAGIC_BYTES, pos + 1)
    while (next !== -1 && parseAt(buf, next).status !== 'ok') next = buf.indexOf(MAGIC_BYTES, next + 1)
    if (next === -1) break
    damaged++
    pos = next
  }
  return { entries, validBytes, damaged }
}

/** A dead letter as the log says it is now. */
export interface LetterState {
  seq: number
  /** Why it was (last) set aside. */
  reason: DeadLetterReason
  detail: string
  /** held: waiting for the operator; retrying: the bridge sends it again. */
  state: 'held' | 'retrying'
  /** When it was first set aside. */
  since: number
  /** Where its letter entry lies in the log (offset, length) and its queue record within it. */
  offset: number
  length: number
  record: { start: number; end: number }
}

export interface LogState {
  /** Letters still held or retrying, by gw-seq. */
  letters: Map<number, LetterState>
  /** Bytes of entries no longer needed (resolved letters, state changes, duplicates). */
  garbageBytes: number
}

/** Replays the log's entries into the letters they leave. */
export function replay(entries: ReadonlyArray<LogEntry>): LogState {
  const letters = new Map<number, LetterState>()
  let garbageBytes = 0
  for (const e of entries) {
    const letter = letters.get(e.seq)
    if (e.kind === 'letter') {
      if (letter || !e.record || !isReason(e.change)) {
        garbageBytes += e.length
        continue
      }
      letters.set(e.seq, {
        seq: e.seq,
        reason: e.change,
        detail: e.detail,
        state: 'held',
        since: e.at,
        offset: e.offset,
        length: e.length,
        record: e.record,
      })
      continue
    }
    garbageBytes += e.length
    if (!letter) continue
    if (e.change === 'dropped' || e.change === 'delivered') {
      letters.delete(e.seq)
      garbageBytes += letter.length
    } else if (e.change === 'retrying') letter.state = 'retrying'
    else {
      letter.state = 'held'
      letter.reason = e.change
      letter.detail = e.detail
    }
  }
  return { letters, garbageBytes }
}
