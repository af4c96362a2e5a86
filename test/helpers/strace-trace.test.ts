import { describe, expect, it } from 'vitest'
import { abbreviate, checkSyncBeforePuback, mqttPackets, parseStrace, unquote } from './strace-trace.js'

const SEG = '/tmp/gw/state/queue/seg-000000000001.log'
const OTHER = '/tmp/gw/state/queue/seg-000000000002.log'
const SOCKET = 'TCP:[127.0.0.1:1883->127.0.0.1:40000]'
const ELSEWHERE = 'TCP:[127.0.0.1:1883->127.0.0.1:40001]'

/** A record holding `payload` as the queue writes it (what matters here: the payload bytes are in it). */
const record = (payload: string) => `"\\xeb\\x51\\x9c\\x2d\\x01\\x02${payload}"`
const recordBytes = (payload: string) => 6 + payload.length

const pwrite = (pid: number, path: string, payload: string) =>
  `${pid}  10:00:00.000001 pwrite64(17<${path}>, ${record(payload)}, ${recordBytes(payload)}, 16) = ${recordBytes(payload)} <0.000020>`
const sync = (pid: number, path: string, result = '0') =>
  `${pid}  10:00:00.000002 fdatasync(17<${path}>) = ${result} <0.000300>`
const puback = (id: number, socket = SOCKET) =>
  `100  10:00:00.000003 write(23<${socket}>, "@\\x02\\x00${`\\x${id.toString(16).padStart(2, '0')}`}", 4) = 4 <0.000010>`

const payloadOf = new Map([
  [1, Buffer.from('msg-1')],
  [2, Buffer.from('msg-2')],
])
const options = {
  socket: SOCKET,
  isSegment: (p: string) => p.startsWith('/tmp/gw/state/queue/seg-'),
  payloadOf,
}
const problems = (trace: string[]) =>
  checkSyncBeforePuback(parseStrace(trace.join('\n')), options).map((c) => [c.packetId, c.problem])

describe('strace trace: PUBACK after the sync of its record', () => {
  it('passes a record written, synced, then acknowledged', () => {
    const checks = checkSyncBeforePuback(
      parseStrace([pwrite(101, SEG, 'msg-1'), sync(102, SEG), puback(1)].join('\n')),
      options,
    )
    expect(checks).toHaveLength(1)
    expect(checks[0]).toMatchObject({ packetId: 1, problem: undefined })
    expect(checks[0]!.record!.fdPath).toBe(SEG)
    expect(checks[0]!.sync!.name).toBe('fdatasync')
  })

  it('with requireSync false, passes a record written then acknowledged with no sync, and still fails a PUBACK before the write', () => {
    const write = { ...options, requireSync: false }
    const trace = [pwrite(101, SEG, 'msg-1'), puback(1), puback(2), pwrite(101, SEG, 'msg-2')]
    const checks = checkSyncBeforePuback(parseStrace(trace.join('\n')), write)
    expect(checks.map((c) => [c.packetId, c.problem, c.sync])).toEqual([
      [1, undefined, undefined],
      [2, 'no write of its record to a segment before the PUBACK', undefined],
    ])
    expect(checks[0]!.record!.fdPath).toBe(SEG)
  })

  it('fails a PUBACK with no sync of the segment after the record', () => {
    expect(problems([sync(102, SEG), pwrite(101, SEG, 'msg-1'), puback(1)])).toEqual([
      [1, `no fdatasync or fsync of ${SEG} after the record was written`],
    ])
  })

  it('fails a PUBACK written before the sync returned (unfinished, then resumed after the PUBACK)', () => {
    const trace = [
      pwrite(101, SEG, 'msg-1'),
      `102  10:00:00.000002 fdatasync(17<${SEG}> <unfinished ...>`,
      puback(1),
      '102  10:00:00.000004 <... fdatasync resumed>) = 0 <0.020000>',
    ]
    expect(problems(trace)).toEqual([
      [
        1,
        `the first fdatasync of ${SEG} after the record (line 2..4, returned 0) did not complete with success before the PUBACK (line 3)`,
      ],
    ])
  })

  it('fails a sync of another file, a failed sync and an injected one', () => {
    expect(problems([pwrite(101, SEG, 'msg-1'), sync(102, OTHER), puback(1)])[0]![1]).toBe(
      `no fdatasync or fsync of ${SEG} after the record was written`,
    )
    expect(
      problems([pwrite(101, SEG, 'msg-1'), sync(102, SEG, '-1 EIO (Input/output error)'), puback(1)])[0]![1],
    ).toContain('returned -1 EIO')
    expect(problems([pwrite(101, SEG, 'msg-1'), sync(102, SEG, '0 (INJECTED)'), puback(1)])[0]![1]).toContain(
      'returned 0, injected',
    )
  })

  it('fails a PUBACK whose record was never written, or for a packet id the device did not send', () => {
    expect(problems([puback(1)])).toEqual([[1, 'no write of its record to a segment before the PUBACK']])
    expect(problems([puback(9)])).toEqual([[9, 'PUBACK for packet id 9, which the device did not send']])
  })

  it('reads PUBACKs batched in one writev and split across writes, and only on the device socket', () => {
    const trace = [
      pwrite(101, SEG, 'msg-1'),
      pwrite(101, SEG, 'msg-2'),
      sync(102, SEG),
      `100  10:00:00.000003 write(23<${ELSEWHERE}>, "@\\x02\\x00\\x07", 4) = 4 <0.000010>`,
      `100  10:00:00.000003 writev(23<${SOCKET}>, [{iov_base=" \\x02\\x00\\x00", iov_len=4}, {iov_base="@", iov_len=1}, {iov_base="\\x02", iov_len=1}, {iov_base="\\x00\\x01", iov_len=2}, {iov_base="@\\x02", iov_len=2}], 5) = 10 <0.000010>`,
      `100  10:00:00.000004 write(23<${SOCKET}>, "\\x00\\x02", 2) = 2 <0.000010>`,
    ]
    const checks = checkSyncBeforePuback(parseStrace(trace.join('\n')), options)
    expect(checks.map((c) => [c.packetId, c.problem, c.puback.enter])).toEqual([
      [1, undefined, 4],
      [2, undefined, 5],
    ])
  })

  it('counts only the bytes a write returned', () => {
    const calls = parseStrace(
      `100  10:00:00.000003 write(23<${SOCKET}>, "@\\x02\\x00\\x01@\\x02", 6) = 4 <0.000010>`,
    )
    expect(mqttPackets(calls).map((p) => p.body)).toEqual([Buffer.from([0, 1])])
  })
})

describe('strace trace: parsing', () => {
  it('reads a string with C escapes, hex and octal', () => {
    expect(unquote('a\\"b\\\\c\\n\\x00\\xff\\177')).toEqual(
      Buffer.from([97, 34, 98, 92, 99, 10, 0, 255, 127]),
    )
  })

  it('refuses a buffer strace cut short', () => {
    expect(() => parseStrace(`100  10:00:00.000003 write(23<${SOCKET}>, "@\\x02"..., 4) = 4`)).toThrow(
      /raise -s/,
    )
  })

  it('takes a socket annotation whole, with its `->`', () => {
    const [call] = parseStrace(puback(1))
    expect(call).toMatchObject({ name: 'write', fd: 23, fdPath: SOCKET, ret: 4, injected: false })
  })

  it('shortens long strings and iovec arrays for reports', () => {
    const iov = Array.from({ length: 6 }, () => '{iov_base="@", iov_len=1}').join(', ')
    expect(abbreviate(`write(3, "${'a'.repeat(50)}", 50) = 50`, 4)).toBe(
      'write(3, "aaaa"…(50 bytes), 50) = 50',
    )
    expect(abbreviate(`writev(3, [${iov}], 6) = 6`)).toBe(
      'writev(3, [{iov_base="@", iov_len=1}, {iov_base="@", iov_len=1}, {iov_base="@", iov_len=1}, {iov_base="@", iov_len=1}, …2 more], 6) = 6',
    )
  })
})
