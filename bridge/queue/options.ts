import type { Logger } from '../../core/logger.js'
import { QueueError } from './errors.js'

/** When an appended record counts as kept: see FileQueueOptions.durability. */
export type Durability = 'fsync' | 'write'

export interface FileQueueOptions {
  /** Disk space the queue may take, in bytes; at least twice segmentBytes. */
  quotaBytes: number
  /**
   * Size at which a new segment file is started. Default: a sixteenth of quotaBytes, and of
   * the size of the filesystem the folder is on (so a small disk gets small segments), from
   * 1 KiB to 16 MiB.
   */
  segmentBytes?: number
  /** The lowest sequence number to give out (default 1); the log's own numbering wins when higher. */
  firstSeq?: number
  /** Messages held at most (default: no bound but the quota). Memory is a few bytes per held message. */
  maxMessages?: number
  /** QoS 0 messages are refused above this fraction of the quota (default 0.9). */
  qos0Fraction?: number
  /**
   * The part of maxMessages and quotaBytes one device may hold once the queue is half full
   * (see quota.ts), in (0, 1]; default 1: no per-device limit.
   */
  deviceShare?: number
  /** A reader pauses while this many entries it emitted are not acknowledged (default 2,048). */
  readAhead?: number
  /** ... or while they add up to this many record bytes (default 4 MiB). */
  readAheadBytes?: number
  /** Acknowledgements are written to disk at most this long after ack() (default 100 ms). */
  ackFlushMs?: number
  /**
   * When an append resolves (and so when the device gets its PUBACK): `fsync` (default) after the
   * fdatasync that covers its record, which survives a power loss; `write` once the record is in
   * the kernel's page cache, which survives the gateway process dying (kill -9, a crash) but not a
   * power loss or a kernel crash. New segments and the folder are synced in both.
   */
  durability?: Durability
  /** Where the queue's background file work (ack files, segment deletion) reports its failures. */
  logger?: Logger
}

export type ResolvedOptions = Readonly<Required<Omit<FileQueueOptions, 'logger'>>> & {
  readonly logger?: Logger
}

function describe(value: unknown): string {
  return `\`${String(value)}\` (${typeof value})`
}

function check(name: string, value: unknown, ok: boolean, expected: string): void {
  if (!ok) {
    throw new QueueError(
      'QUEUE_ERR_OPTIONS',
      `Expected the \`${name}\` option to be ${expected}, got ${describe(value)}`,
    )
  }
}

const isInt = (v: unknown, min: number): v is number => Number.isSafeInteger(v) && (v as number) >= min
const isIntOrInfinity = (v: unknown, min: number) => v === Number.POSITIVE_INFINITY || isInt(v, min)

/** The default segment size: a sixteenth of the quota and of the disk (when known), from 1 KiB to 16 MiB. */
export function defaultSegmentBytes(quotaBytes: number, diskBytes = Number.POSITIVE_INFINITY): number {
  return Math.min(16 * 1024 * 1024, Math.max(1024, Math.floor(Math.min(quotaBytes, diskBytes) / 16)))
}

/**
 * Validates `options`, fills in the defaults and freezes the result. `diskBytes` is the size
 * of the filesystem the queue is on, when known.
 */
export function resolveOptions(options: FileQueueOptions, diskBytes?: number): ResolvedOptions {
  const { quotaBytes } = options
  check('quotaBytes', quotaBytes, isInt(quotaBytes, 2048), 'an integer of at least 2048')
  const segmentBytes = options.segmentBytes ?? defaultSegmentBytes(quotaBytes, diskBytes)
  check('segmentBytes', segmentBytes, isInt(segmentBytes, 1024), 'an integer of at least 1024')
  check(
    'segmentBytes',
    segmentBytes,
    segmentBytes * 2 <= quotaBytes,
    `at most half of quotaBytes (${quotaBytes}), since space comes back by whole segments`,
  )
  const resolved = {
    quotaBytes,
    segmentBytes,
    firstSeq: options.firstSeq ?? 1,
    maxMessages: options.maxMessages ?? Number.POSITIVE_INFINITY,
    qos0Fraction: options.qos0Fraction ?? 0.9,
    deviceShare: options.deviceShare ?? 1,
    readAhead: options.readAhead ?? 2048,
    readAheadBytes: options.readAheadBytes ?? 4 * 1024 * 1024,
    ackFlushMs: options.ackFlushMs ?? 100,
    durability: options.durability ?? 'fsync',
    ...(options.logger && { logger: options.logger }),
  }
  check('firstSeq', resolved.firstSeq, isInt(resolved.firstSeq, 0), 'a non-negative safe integer')
  check(
    'maxMessages',
    resolved.maxMessages,
    isIntOrInfinity(resolved.maxMessages, 1),
    'a positive integer or Infinity',
  )
  const fraction = resolved.qos0Fraction
  check(
    'qos0Fraction',
    fraction,
    typeof fraction === 'number' && fraction > 0 && fraction <= 1,
    'a number in (0, 1]',
  )
  const share = resolved.deviceShare
  check('deviceShare', share, typeof share === 'number' && share > 0 && share <= 1, 'a number in (0, 1]')
  check(
    'readAhead',
    resolved.readAhead,
    isIntOrInfinity(resolved.readAhead, 1),
    'a positive integer or Infinity',
  )
  check(
    'readAheadBytes',
    resolved.readAheadBytes,
    isIntOrInfinity(resolved.readAheadBytes, 1),
    'a positive integer or Infinity',
  )
  check('ackFlushMs', resolved.ackFlushMs, isInt(resolved.ackFlushMs, 0), 'a non-negative integer')
  const durability: unknown = resolved.durability
  check('durability', durability, durability === 'fsync' || durability === 'write', "'fsync' or 'write'")
  return Object.freeze(resolved)
}
