import mqttPacket from 'mqtt-packet'
import { describe, expect, it } from 'vitest'
import {
  type FixedHeader,
  HEADER_INCOMPLETE,
  HEADER_MALFORMED,
  readFixedHeader,
} from '../../../core/mqtt-fixed-header.js'
import { checkBody, checkHeader } from '../../../gateway/protocol/packet-rules.js'
import { checkString, checkTopicFilter, checkTopicName } from '../../../gateway/protocol/strings.js'
import { remainingLength } from './raw-client.js'

const header = (): FixedHeader => ({ type: -1, flags: -1, remaining: -1, headerBytes: -1 })
const b = (s: string | number[]) => (typeof s === 'string' ? Buffer.from(s, 'utf8') : Buffer.from(s))
const whole = (fn: typeof checkString, s: string | number[]) => {
  const buf = b(s)
  return fn(buf, 0, buf.length)
}

describe('readFixedHeader', () => {
  it('decodes every remaining-length size class at its bounds', () => {
    for (const n of [0, 1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, 268_435_455]) {
      const bytes = Buffer.concat([Buffer.from([0x32]), remainingLength(n)])
      const h = header()
      expect(readFixedHeader(bytes, 0, h)).toBe(bytes.length)
      expect(h).toEqual({ type: 3, flags: 2, remaining: n, headerBytes: bytes.length })
    }
  })

  it('reads at an offset, and says incomplete for every prefix of a header', () => {
    const bytes = Buffer.from([0xaa, 0x30, 0xff, 0xff, 0x7f])
    for (let end = 1; end < bytes.length; end++)
      expect(readFixedHeader(bytes.subarray(0, end), 1, header())).toBe(HEADER_INCOMPLETE)
    const h = header()
    expect(readFixedHeader(bytes, 1, h)).toBe(4)
    expect(h.remaining).toBe(2_097_151)
  })

  it('refuses a remaining length that takes a fifth byte, before that byte arrives', () => {
    expect(readFixedHeader(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x80]), 0, header())).toBe(HEADER_MALFORMED)
    expect(readFixedHeader(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]), 0, header())).toBe(
      HEADER_MALFORMED,
    )
  })
})

describe('strings, topic names and topic filters', () => {
  it('accepts UTF-8 beyond ASCII, U+00A0 and U+FEFF', () => {
    for (const s of ['a', 'température', '\u{1f600}', '\u00a0', '\ufeff', '\u07ff\u0800\uffff'])
      expect(whole(checkString, s)).toBeNull()
  })

  it('refuses U+0000, C0 controls, DEL, C1 controls and ill-formed UTF-8', () => {
    const bad: Array<number[]> = [
      [0x00],
      [0x01],
      [0x09],
      [0x1f],
      [0x7f],
      [0xc2, 0x80],
      [0xc2, 0x9f],
      [0xff],
      [0xc3, 0x28],
      [0xc0, 0xaf],
      [0xe0, 0x80, 0xaf],
      [0xed, 0xa0, 0x80],
      [0xf4, 0x90, 0x80, 0x80],
      [0xe2, 0x82],
      [0x80],
    ]
    for (const s of bad)
      expect(whole(checkString, [0x61, ...s, 0x62]), Buffer.from(s).toString('hex')).toBe('invalid_string')
  })

  it('topic names: not empty, no wildcards', () => {
    expect(whole(checkTopicName, 'a/b')).toBeNull()
    expect(whole(checkTopicName, '/')).toBeNull()
    expect(whole(checkTopicName, '$SYS/x')).toBeNull()
    for (const s of ['', '+', '#', 'a/+', 'a/#', 'a+b', 'a#'])
      expect(whole(checkTopicName, s), s).toBe('invalid_topic')
    expect(whole(checkTopicName, [0x61, 0x00])).toBe('invalid_string')
  })

  it('topic filters: wildcards only as whole levels, # only last', () => {
    for (const s of ['#', '+', '/', '+/+', 'a/#', 'a/+/b', '+/#', '/+', '//', 'a/+/#', '$share/g/a/#'])
      expect(whole(checkTopicFilter, s), s).toBeNull()
    for (const s of ['', '#/a', 'a/#/b', 'a#', '#a', 'a+', '+a', 'a/b+/c', '++', '##', 'a/#/'])
      expect(whole(checkTopicFilter, s), s).toBe('invalid_filter')
  })
})

/** Every client-to-server packet mqtt-packet generates with valid fields. */
const VALID: mqttPacket.Packet[] = [
  { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: '', clean: true, keepalive: 0 },
  { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'dev-1', clean: false, keepalive: 60 },
  {
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 4,
    clientId: 'dev-é',
    clean: true,
    keepalive: 10,
    username: 'user',
    password: Buffer.from([0, 1, 2, 0xff]),
    will: { topic: 'devices/dev/state', payload: Buffer.alloc(300, 1), qos: 2, retain: true },
  },
  {
    cmd: 'connect',
    protocolId: 'MQIsdp',
    protocolVersion: 3,
    clientId: 'old',
    clean: true,
    keepalive: 5,
    username: 'u',
  },
  { cmd: 'publish', topic: 'a', payload: Buffer.alloc(0), qos: 0, retain: false, dup: false },
  {
    cmd: 'publish',
    topic: 'a/b/c',
    payload: Buffer.alloc(200),
    qos: 1,
    messageId: 65_535,
    retain: true,
    dup: true,
  },
  {
    cmd: 'publish',
    topic: 'ü/ñ',
    payload: Buffer.from('x'),
    qos: 2,
    messageId: 1,
    retain: false,
    dup: false,
  },
  { cmd: 'puback', messageId: 1 },
  { cmd: 'pubrec', messageId: 2 },
  { cmd: 'pubrel', messageId: 3 },
  { cmd: 'pubcomp', messageId: 4 },
  {
    cmd: 'subscribe',
    messageId: 7,
    subscriptions: [
      { topic: '#', qos: 0 },
      { topic: 'a/+/c', qos: 1 },
      { topic: 'x', qos: 2 },
    ],
  },
  { cmd: 'unsubscribe', messageId: 8, unsubscriptions: ['#', 'a/+/c'] },
  { cmd: 'pingreq' },
  { cmd: 'disconnect' },
] as mqttPacket.Packet[]

describe('checkHeader and checkBody', () => {
  it.each(VALID.map((p) => [p.cmd, p] as const))('a valid %s passes', (_cmd, p) => {
    const bytes = mqttPacket.generate(p)
    const h = header()
    expect(readFixedHeader(bytes, 0, h)).toBeGreaterThan(0)
    expect(h.headerBytes + h.remaining).toBe(bytes.length)
    expect(checkHeader(h)).toBeNull()
    expect(checkBody(bytes, 0, h)).toBeNull()
  })

  it('a packet preceded by other bytes is read at its offset', () => {
    const bytes = Buffer.concat([Buffer.from([1, 2, 3]), mqttPacket.generate(VALID[2]!)])
    const h = header()
    readFixedHeader(bytes, 3, h)
    expect(checkBody(bytes, 3, h)).toBeNull()
  })
})
