import { open, readdir, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { parseAcks } from './ack-log.js'
import type { DeviceLedger } from './device-ledger.js'
import {
  findNextRecord,
  frameAt,
  MIN_RECORD_BYTES,
  recordDeviceId,
  recordReceivedAt,
  recordSeq,
} from './record.js'
import {
  ackFileName,
  decodeSegmentHeader,
  parseFileName,
  SEGMENT_HEADER_BYTES,
  SegmentIndex,
  segmentFileName,
} from './segment.js'

/** What open() found on disk. */
export interface RecoveryReport {
  /** Valid records found in the log, acknowledged or not. */
  records: number
  /** Of those, the ones not acknowledged: the queue holds them and read() replays them. */
  held: number
  /** Bytes cut from segment ends: a record torn by a crash or power loss mid-write. */
  tornBytes: number
  /** Damaged stretches skipped in the middle of a segment (each was one record or more). */
  corrupted: number
  /** One line per finding, for the log. */
  details: string[]
}

export interface RecoveredLog {
  /** Segments in order, with what they hold. */
  segments: SegmentIndex[]
  /** Above every sequence number the log may have given out. */
  nextSeq: number
  /** Id for the next segment file. */
  nextId: number
  report: RecoveryReport
}

/**
 * Scans every segment of `dir` in order and rebuilds the index. The rules:
 * - every record's checksum is verified;
 * - a record that runs past the end of its file, or damage with no valid record
 *   after it, is a torn tail: the file is truncated there (tornBytes);
 * - damage followed by a valid record is skipped, counted (corrupted) and
 *   described, and the scan goes on from the next record marker that starts a
 *   valid record;
 * - sequence numbers must rise within a segment, by at most what the skipped
 *   bytes could have held; a record that breaks this is skipped as damage;
 * - after a cut tail the numbering skips as many numbers as the cut bytes could
 *   have held, so no number that may have reached the cloud is given out again;
 * - a segment whose header is damaged takes its base from its first valid
 *   record; one with no header and no record (made at the instant of a crash) is
 *   removed;
 * - ack files: damaged entries are ignored (their messages are sent again), a
 *   torn last entry is cut, an ack file without its segment is removed.
 * Nothing here refuses to start: each finding is reported and the scan goes on.
 * What each device holds is counted into `ledger` from the records' device ids.
 */
export async function recoverLog(dir: string, ledger: DeviceLedger): Promise<RecoveredLog> {
  const report: RecoveryReport = { records: 0, held: 0, tornBytes: 0, corrupted: 0, details: [] }
  const logs = new Set<number>()
  const acks = new Set<number>()
  for (const name of await readdir(dir)) {
    const parsed = parseFileName(name)
    if (parsed) (parsed.kind === 'log' ? logs : acks).add(parsed.id)
  }
  for (const id of acks) if (!logs.has(id)) await rm(join(dir, ackFileName(id)), { force: true })

  const segments: SegmentIndex[] = []
  let lastSeq = -1
  let nextSeq = 0
  let lastId = 0
  for (const id of [...logs].sort((a, b) => a - b)) {
    lastId = id
    const recovered = await recoverSegment(dir, id, lastSeq, report, ledger)
    if (!recovered) continue
    const { segment, tornBytes } = recovered
    await applyAcks(dir, segment, report, ledger)
    segment.trim()
    segments.push(segment)
    report.held += segment.held
    lastSeq = Math.max(lastSeq, segment.lastSeq)
    // A cut tail may have held records already sent (damage, not only a tear): never give their numbers again.
    nextSeq = Math.max(nextSeq, segment.lastSeq + 1 + Math.ceil(tornBytes / MIN_RECORD_BYTES))
  }
  return { segments, nextSeq, nextId: lastId + 1, report }
}

async function recoverSegment(
  dir: string,
  id: number,
  lastSeqBefore: number,
  report: RecoveryReport,
  ledger: DeviceLedger,
): Promise<{ segment: SegmentIndex; tornBytes: number } | undefined> {
  const name = segmentFileName(id)
  const path = join(dir, name)
  const buf = await readFile(path)
  let base = decodeSegmentHeader(buf)
  let pos = SEGMENT_HEADER_BYTES
  if (base === undefined) {
    const first = findNextRecord(buf, 0, buf.length, false)
    if (first === -1) {
      report.details.push(`${name}: no valid header and no record (${buf.length} bytes): removed`)
      await rm(path, { force: true })
      await rm(join(dir, ackFileName(id)), { force: true })
      return undefined
    }
    base = recordSeq(buf, first)
    report.corrupted++
    report.details.push(`${name}: damaged header, ${first} bytes skipped; base taken from the first record`)
    pos = first
  }
  const segment = new SegmentIndex(id, base)
  let prev = Math.max(base - 1, lastSeqBefore)
  let skipped = 0
  let tornBytes = 0
  while (pos < buf.length) {
    const frame = frameAt(buf, pos)
    if (frame.status === 'ok') {
      const seq = recordSeq(buf, pos)
      if (seq > prev && seq <= prev + 1 + Math.floor(skipped / MIN_RECORD_BYTES)) {
        const device = ledger.intern(recordDeviceId(buf, pos))
        const bytes = frame.end - pos
        segment.add(seq, recordReceivedAt(buf, pos), device, bytes)
        ledger.add(device, bytes)
        report.records++
        prev = seq
        skipped = 0
      } else {
        report.corrupted++
        report.details.push(
          `${name}: record at byte ${pos} has sequence number ${seq}, expected just above ${prev}: skipped`,
        )
        skipped += frame.end - pos
      }
      pos = frame.end
      continue
    }
    const reason = frame.status === 'short' ? 'record runs past the end of the file' : frame.reason
    const next = findNextRecord(buf, pos + 1, buf.length, false)
    if (next === -1) {
      tornBytes = buf.length - pos
      await truncateFile(path, pos)
      report.tornBytes += tornBytes
      report.details.push(
        `${name}: torn or damaged tail of ${tornBytes} bytes at byte ${pos} (${reason}): cut`,
      )
      break
    }
    report.corrupted++
    report.details.push(`${name}: bytes ${pos}..${next} (${next - pos} bytes) damaged (${reason}): skipped`)
    skipped += next - pos
    pos = next
  }
  segment.size = Math.min(pos, buf.length)
  return { segment, tornBytes }
}

async function applyAcks(
  dir: string,
  segment: SegmentIndex,
  report: RecoveryReport,
  ledger: DeviceLedger,
): Promise<void> {
  const name = ackFileName(segment.id)
  const path = join(dir, name)
  let buf: Buffer
  try {
    buf = await readFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw err
  }
  const parsed = parseAcks(buf)
  if (parsed.wholeBytes < buf.length) await truncateFile(path, parsed.wholeBytes)
  if (parsed.damaged > 0) {
    report.details.push(
      `${name}: ${parsed.damaged} damaged ack entries ignored (those messages are sent again)`,
    )
  }
  segment.ackBytes = parsed.wholeBytes
  for (const [seq, count] of parsed.runs) {
    const from = Math.max(seq, segment.baseSeq)
    const to = Math.min(seq + count - 1, segment.lastSeq)
    for (let s = from; s <= to; s++) segment.release(s, ledger)
  }
}

async function truncateFile(path: string, length: number): Promise<void> {
  const handle = await open(path, 'r+')
  try {
    await handle.truncate(length)
    await handle.datasync()
  } finally {
    await handle.close()
  }
}
