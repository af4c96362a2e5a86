import { randomBytes } from 'node:crypto'
import * as zlib from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { BodyProtection } from '../../../bridge/envelope.js'
import { encodeAckRuns, parseAcks, toRuns } from '../../../bridge/queue/ack-log.js'
import { crc32, crc32Table } from '../../../bridge/queue/crc32.js'
import {
  decodeMessage,
  encodeRecord,
  findNextRecord,
  frameAt,
  MIN_RECORD_BYTES,
  recordSeq,
  recordSize,
} from '../../../bridge/queue/record.js'
import { decodeSegmentHeader, encodeSegmentHeader } from '../../../bridge/queue/segment.js'
import { message } from './contract.js'

describe('crc32', () => {
  it('matches the standard check value and zlib, also when continued', () => {
    expect(crc32Table(Buffer.from('123456789'))).toBe(0xcbf43926)
    const data = randomBytes(10_000)
    expect(crc32Table(data)).toBe(crc32(data))
    expect(crc32Table(data.subarray(5000), crc32Table(data.subarray(0, 5000)))).toBe(crc32(data))
    if (typeof zlib.crc32 === 'function') expect(crc32).toBe(zlib.crc32)
  })
})

describe('record codec', () => {
  it('round-trips a message and its sequence number, up to 2^53 - 1', () => {
    for (const seq of [0, 1, 2 ** 32 - 1, 2 ** 32, 1_700_000_000_000_000, Number.MAX_SAFE_INTEGER]) {
      const msg = { ...message(7), topic: 'dévices/ü/温度', payload: randomBytes(100), qos: 0 as const }
      const buf = encodeRecord(seq, msg)
      expect(buf.length).toBe(recordSize(msg))
      expect(frameAt(buf, 0)).toEqual({ status: 'ok', end: buf.length })
      expect(recordSeq(buf, 0)).toBe(seq)
      expect(decodeMessage(buf, 0, buf.length)).toEqual(msg)
    }
  })

  it('keeps the body protection a message was accepted under (bits 2-3 of the flags), and none when not recorded', () => {
    for (const protection of [BodyProtection.plain, BodyProtection.hpke, BodyProtection.device]) {
      for (const qos of [0, 1] as const) {
        const msg = { ...message(4), qos, protection }
        const buf = encodeRecord(9, msg)
        expect(buf[28]).toBe(qos | (msg.retain ? 2 : 0) | ((protection + 1) << 2))
        expect(decodeMessage(buf, 0, buf.length)).toEqual(msg)
      }
    }
    const unrecorded = encodeRecord(9, message(4))
    expect(unrecorded[28]! >> 2).toBe(0)
    expect(decodeMessage(unrecorded, 0, unrecorded.length)).not.toHaveProperty('protection')
  })

  it('keeps an empty payload and empty strings', () => {
    const msg = { ...message(1), payload: Buffer.alloc(0), deviceId: '', clientId: '', topic: '' }
    const buf = encodeRecord(3, msg)
    expect(buf.length).toBe(MIN_RECORD_BYTES)
    expect(decodeMessage(buf, 0, buf.length)).toEqual(msg)
  })

  it('tells a short record from a damaged one, at every byte', () => {
    const buf = encodeRecord(42, message(42))
    for (let cut = 0; cut < buf.length; cut++) expect(frameAt(buf.subarray(0, cut), 0).status).toBe('short')
    for (let i = 0; i < buf.length; i++) {
      const damaged = Buffer.from(buf)
      damaged[i]! ^= 0x20
      expect(frameAt(damaged, 0).status).not.toBe('ok')
    }
  })

  it('finds the next record after damage, and none in a buffer without one', () => {
    const a = encodeRecord(1, message(1))
    const b = encodeRecord(2, message(2))
    const buf = Buffer.concat([a, b])
    buf[20]! ^= 1
    expect(findNextRecord(buf, 1, buf.length, false)).toBe(a.length)
    expect(findNextRecord(Buffer.alloc(1000), 0, 1000, false)).toBe(-1)
    // A record cut by the end of the buffer counts only when asked to.
    expect(findNextRecord(buf.subarray(0, buf.length - 1), 1, buf.length - 1, false)).toBe(-1)
    expect(findNextRecord(buf.subarray(0, buf.length - 1), 1, buf.length - 1, true)).toBe(a.length)
  })
})

describe('segment header', () => {
  it('round-trips the base and refuses a damaged header', () => {
    const header = encodeSegmentHeader(2 ** 40 + 3)
    expect(decodeSegmentHeader(header)).toBe(2 ** 40 + 3)
    for (let i = 0; i < header.length; i++) {
      const damaged = Buffer.from(header)
      damaged[i]! ^= 1
      expect(decodeSegmentHeader(damaged)).toBeUndefined()
    }
    expect(decodeSegmentHeader(header.subarray(0, 15))).toBeUndefined()
  })
})

describe('ack entries', () => {
  it('turns acknowledged numbers into runs and back', () => {
    expect(toRuns([9, 3, 4, 5, 7, 2 ** 40, 2 ** 40 + 1])).toEqual([
      [3, 3],
      [7, 1],
      [9, 1],
      [2 ** 40, 2],
    ])
    const runs = toRuns([1, 2, 3, 10])
    expect(parseAcks(encodeAckRuns(runs))).toEqual({ runs, damaged: 0, wholeBytes: 40 })
    expect(toRuns([])).toEqual([])
  })

  it('ignores a damaged entry and leaves a torn one out', () => {
    const buf = encodeAckRuns([
      [1, 1],
      [5, 2],
      [9, 1],
    ])
    buf[25]! ^= 1
    const parsed = parseAcks(buf.subarray(0, 55))
    expect(parsed).toEqual({ runs: [[1, 1]], damaged: 1, wholeBytes: 40 })
  })
})
