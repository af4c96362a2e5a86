import type { BodyProtection } from '../envelope.js'
import { crc32 } from './crc32.js'
import { QueueError } from './errors.js'
import type { QueuedMessage } from './queue.js'

/**
 * One record of the log, little-endian:
 *
 * | offset | bytes | field |
 * | --- | --- | --- |
 * | 0 | 4 | magic 0x2d9c51eb (bytes eb 51 9c 2d), where a scan resynchronizes |
 * | 4 | 4 | CRC-32 of everything from offset 8 to the end of the record |
 * | 8 | 4 | body length L |
 * | 12 | 8 | gateway sequence number (unsigned, below 2^53) |
 * | 20 | 8 | receivedAt, ms since the epoch (float64) |
 * | 28 | 1 | flags: bit 0 QoS 1, bit 1 retain, bits 2-3 the body protection it was accepted under plus 1 (0: not recorded) |
 * | 29 | 2+2+2 | byte lengths of deviceId, clientId, topic |
 * | 35 | ... | deviceId, clientId, topic (UTF-8), then the payload to the end (12 + L) |
 *
 * The checksum covers the length, so a damaged length is caught like a damaged payload.
 */
export const RECORD_MAGIC = 0x2d9c51eb
export const FRAME_BYTES = 12
const FIXED_BODY = 23
/** The smallest possible record: a frame and an empty body. */
export const MIN_RECORD_BYTES = FRAME_BYTES + FIXED_BODY
/** A body longer than this is taken as damage: MQTT payloads stop at 256 MiB, strings at 64 KiB each. */
const MAX_BODY = 256 * 1024 * 1024 + 3 * 0xffff + FIXED_BODY
const MAGIC_BYTES = Buffer.from([0xeb, 0x51, 0x9c, 0x2d])
const TWO_32 = 2 ** 32

function stringBytes(field: string, value: string): number {
  const n = Buffer.byteLength(value)
  if (n > 0xffff) {
    throw new QueueError(
      'QUEUE_ERR_RECORD',
      `Expected the ${field} to be at most 65,535 bytes, got ${n} bytes`,
    )
  }
  return n
}

/** Bytes the record of `message` takes in the log. Throws QUEUE_ERR_RECORD for a field that cannot be stored. */
export function recordSize(message: QueuedMessage): number {
  return (
    MIN_RECORD_BYTES +
    stringBytes('device id', message.deviceId) +
    stringBytes('client id', message.clientId) +
    stringBytes('topic', message.topic) +
    message.payload.length
  )
}

/**
 * Writes the record of `message` into `buf` at `pos`, all but its sequence
 * number and checksum, which `stampRecord` adds once the number is known.
 * `size` is recordSize(message).
 */
export function encodeUnstamped(buf: Buffer, pos: number, message: QueuedMessage, size: number): void {
  buf.writeUInt32LE(RECORD_MAGIC, pos)
  buf.writeUInt32LE(size - FRAME_BYTES, pos + 8)
  buf.writeDoubleLE(message.receivedAt, pos + 20)
  const protection = message.protection === undefined ? 0 : message.protection + 1
  buf[pos + 28] = (message.qos === 1 ? 1 : 0) | (message.retain ? 2 : 0) | (protection << 2)
  let at = pos + 35
  const device = buf.write(message.deviceId, at, 'utf8')
  at += device
  const client = buf.write(message.clientId, at, 'utf8')
  at += client
  const topic = buf.write(message.topic, at, 'utf8')
  at += topic
  buf.writeUInt16LE(device, pos + 29)
  buf.writeUInt16LE(client, pos + 31)
  buf.writeUInt16LE(topic, pos + 33)
  message.payload.copy(buf, at)
}

/** Sets the sequence number of the unstamped record at `pos` (`size` bytes long) and its checksum. */
export function stampRecord(buf: Buffer, pos: number, size: number, seq: number): void {
  buf.writeUInt32LE(seq % TWO_32, pos + 12)
  buf.writeUInt32LE(Math.floor(seq / TWO_32), pos + 16)
  buf.writeUInt32LE(crc32(buf.subarray(pos + 8, pos + size)), pos + 4)
}

/** The record of (seq, message) as a new buffer. */
export function encodeRecord(seq: number, message: QueuedMessage): Buffer {
  const size = recordSize(message)
  const buf = Buffer.allocUnsafe(size)
  encodeUnstamped(buf, 0, message, size)
  stampRecord(buf, 0, size, seq)
  return buf
}

/**
 * What lies at `pos` of `buf` (valid bytes up to `end`):
 * - ok: a whole record with a good checksum, ending at `end`;
 * - short: it may be a record, but `need` bytes from `pos` are needed to tell;
 * - bad: not a record (`reason` says why).
 */
export type Frame =
  | { status: 'ok'; end: number }
  | { status: 'short'; need: number }
  | { status: 'bad'; reason: string }

export function frameAt(buf: Buffer, pos: number, end = buf.length): Frame {
  if (end - pos < FRAME_BYTES) return { status: 'short', need: FRAME_BYTES }
  if (buf.readUInt32LE(pos) !== RECORD_MAGIC) return { status: 'bad', reason: 'no record marker' }
  const length = buf.readUInt32LE(pos + 8)
  if (length < FIXED_BODY || length > MAX_BODY) {
    return { status: 'bad', reason: `implausible record length ${length}` }
  }
  const total = FRAME_BYTES + length
  if (end - pos < total) return { status: 'short', need: total }
  if (crc32(buf.subarray(pos + 8, pos + total)) !== buf.readUInt32LE(pos + 4)) {
    return { status: 'bad', reason: 'checksum mismatch' }
  }
  const strings = buf.readUInt16LE(pos + 29) + buf.readUInt16LE(pos + 31) + buf.readUInt16LE(pos + 33)
  if (strings > length - FIXED_BODY) return { status: 'bad', reason: 'field lengths exceed the record' }
  return { status: 'ok', end: pos + total }
}

/**
 * The first position from `from` where a record starts (or, with `acceptShort`,
 * might start but runs past `end`), or -1.
 */
export function findNextRecord(buf: Buffer, from: number, end: number, acceptShort: boolean): number {
  let i = buf.indexOf(MAGIC_BYTES, from)
  while (i !== -1 && i < end) {
    const frame = frameAt(buf, i, end)
    if (frame.status === 'ok' || (acceptShort && frame.status === 'short')) return i
    i = buf.indexOf(MAGIC_BYTES, i + 1)
  }
  return -1
}

/** The sequence number of the record at `pos` (a frame that was found ok). */
export function recordSeq(buf: Buffer, pos: number): number {
  return buf.readUInt32LE(pos + 12) + buf.readUInt32LE(pos + 16) * TWO_32
}

export function recordReceivedAt(buf: Buffer, pos: number): number {
  return buf.readDoubleLE(pos + 20)
}

/** The device id of the record at `pos` (a frame that was found ok). */
export function recordDeviceId(buf: Buffer, pos: number): string {
  return buf.toString('utf8', pos + 35, pos + 35 + buf.readUInt16LE(pos + 29))
}

/** The message of the record at `pos` (a frame that was found ok); the payload is copied out of `buf`. */
export function decodeMessage(buf: Buffer, pos: number, end: number): QueuedMessage {
  const flags = buf[pos + 28]!
  const device = buf.readUInt16LE(pos + 29)
  const client = buf.readUInt16LE(pos + 31)
  const topic = buf.readUInt16LE(pos + 33)
  let at = pos + 35
  const deviceId = buf.toString('utf8', at, at + device)
  at += device
  const clientId = buf.toString('utf8', at, at + client)
  at += client
  const topicName = buf.toString('utf8', at, at + topic)
  at += topic
  const protection = (flags >> 2) & 3
  return {
    topic: topicName,
    payload: Buffer.from(buf.subarray(at, end)),
    qos: flags & 1 ? 1 : 0,
    retain: (flags & 2) !== 0,
    deviceId,
    clientId,
    receivedAt: recordReceivedAt(buf, pos),
    ...(protection !== 0 && { protection: (protection - 1) as BodyProtection }),
  }
}
