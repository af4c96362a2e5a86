import mqtt from 'mqtt'
import mqttPacket from 'mqtt-packet'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LanFixture, PASSWORD_DEVICE } from './lan-fixture.js'
import { packet, RawClient, str, u16 } from './raw-client.js'

interface ConnectSpec {
  name?: string
  level?: number
  headerFlags?: number
  /** Extra bits or-ed into the computed connect flags. */
  extraFlags?: number
  /** Bits cleared from the computed connect flags. */
  clearFlags?: number
  clientId?: string | Buffer | number[]
  will?: { topic: string | Buffer | number[]; qos?: number; retain?: boolean }
  username?: string | Buffer | number[] | null
  password?: boolean
  trailing?: number[]
}

/** A CONNECT built byte by byte, so every field can be wrong; by default the password device's. */
function connect(spec: ConnectSpec = {}): Buffer {
  const username = spec.username === undefined ? PASSWORD_DEVICE.username : spec.username
  const password = spec.password ?? username !== null
  let flags = 0x02
  if (spec.will) flags |= 0x04 | ((spec.will.qos ?? 0) << 3) | (spec.will.retain ? 0x20 : 0)
  if (username !== null) flags |= 0x80
  if (password) flags |= 0x40
  flags = (flags | (spec.extraFlags ?? 0)) & ~(spec.clearFlags ?? 0)
  const parts = [
    str(spec.name ?? 'MQTT'),
    Buffer.from([spec.level ?? 4, flags]),
    u16(60),
    str(spec.clientId ?? 'pass-dev-case'),
  ]
  if (spec.will) parts.push(str(spec.will.topic), str('gone'))
  if (username !== null) parts.push(str(username))
  if (password) parts.push(str(PASSWORD_DEVICE.password))
  if (spec.trailing) parts.push(Buffer.from(spec.trailing))
  return packet(1, spec.headerFlags ?? 0, Buffer.concat(parts))
}

const publish = (
  topic: string | Buffer | number[],
  opts: { flags?: number; id?: number; payload?: string } = {},
) => {
  const flags = opts.flags ?? 0
  const qos = (flags >> 1) & 3
  return packet(
    3,
    flags,
    Buffer.concat([
      str(topic),
      qos > 0 ? u16(opts.id ?? 1) : Buffer.alloc(0),
      Buffer.from(opts.payload ?? 'x'),
    ]),
  )
}
const subscribe = (
  filters: Array<[string | Buffer | number[], number]>,
  opts: { flags?: number; id?: number } = {},
) =>
  packet(
    8,
    opts.flags ?? 2,
    Buffer.concat([u16(opts.id ?? 1), ...filters.flatMap(([f, q]) => [str(f), Buffer.from([q])])]),
  )
const unsubscribe = (filters: Array<string | Buffer>, opts: { flags?: number; id?: number } = {}) =>
  packet(10, opts.flags ?? 2, Buffer.concat([u16(opts.id ?? 1), ...filters.map((f) => str(f))]))

const NUL = [0x61, 0x00, 0x62]
const C0 = [0x61, 0x01, 0x62]
const DEL = [0x61, 0x7f, 0x62]
const C1 = [0x61, 0xc2, 0x85, 0x62]
const BAD_UTF8 = [0x61, 0xff, 0x62]
const SURROGATE = [0x61, 0xed, 0xa0, 0x80]
const OVERLONG = [0x61, 0xc0, 0xaf]
const TRUNCATED = [0x61, 0xe2, 0x82]

interface Case {
  name: string
  /** Sent as the first packet (before), or after a CONNECT that got CONNACK 0. */
  when: 'first' | 'authenticated'
  bytes: Buffer
  reason: string
}

const CASES: Case[] = [
  // MQTT-3.1.4-1: a CONNECT that does not conform is closed without a CONNACK.
  {
    name: 'NUL in the client id',
    when: 'first',
    bytes: connect({ clientId: NUL }),
    reason: 'invalid_string',
  },
  {
    name: 'C0 control in the client id',
    when: 'first',
    bytes: connect({ clientId: C0 }),
    reason: 'invalid_string',
  },
  {
    name: 'DEL in the client id',
    when: 'first',
    bytes: connect({ clientId: DEL }),
    reason: 'invalid_string',
  },
  {
    name: 'C1 control (U+0085) in the client id',
    when: 'first',
    bytes: connect({ clientId: C1 }),
    reason: 'invalid_string',
  },
  {
    name: 'invalid UTF-8 in the client id',
    when: 'first',
    bytes: connect({ clientId: BAD_UTF8 }),
    reason: 'invalid_string',
  },
  {
    name: 'a UTF-16 surrogate in the client id',
    when: 'first',
    bytes: connect({ clientId: SURROGATE }),
    reason: 'invalid_string',
  },
  {
    name: 'an overlong encoding in the client id',
    when: 'first',
    bytes: connect({ clientId: OVERLONG }),
    reason: 'invalid_string',
  },
  {
    name: 'a truncated UTF-8 sequence in the client id',
    when: 'first',
    bytes: connect({ clientId: TRUNCATED }),
    reason: 'invalid_string',
  },
  {
    name: 'NUL in the username',
    when: 'first',
    bytes: connect({ username: [0x70, 0x00] }),
    reason: 'invalid_string',
  },
  {
    name: 'control character in the username',
    when: 'first',
    bytes: connect({ username: [0x70, 0x1b] }),
    reason: 'invalid_string',
  },
  {
    name: 'NUL in the Will topic',
    when: 'first',
    bytes: connect({ will: { topic: [0x64, 0x00] } }),
    reason: 'invalid_string',
  },
  {
    name: 'control character in the Will topic',
    when: 'first',
    bytes: connect({ will: { topic: C0 } }),
    reason: 'invalid_string',
  },
  {
    name: 'invalid UTF-8 in the Will topic',
    when: 'first',
    bytes: connect({ will: { topic: BAD_UTF8 } }),
    reason: 'invalid_string',
  },
  {
    name: 'a wildcard in the Will topic',
    when: 'first',
    bytes: connect({ will: { topic: 'devices/pass-dev/+' } }),
    reason: 'invalid_topic',
  },
  {
    name: 'an empty Will topic',
    when: 'first',
    bytes: connect({ will: { topic: '' } }),
    reason: 'invalid_topic',
  },
  {
    name: 'Will QoS 3',
    when: 'first',
    bytes: connect({ will: { topic: 'devices/pass-dev/will', qos: 3 } }),
    reason: 'invalid_qos',
  },
  {
    name: 'Will QoS without the Will flag',
    when: 'first',
    bytes: connect({ extraFlags: 0x08 }),
    reason: 'invalid_connect_flags',
  },
  {
    name: 'Will Retain without the Will flag',
    when: 'first',
    bytes: connect({ extraFlags: 0x20 }),
    reason: 'invalid_connect_flags',
  },
  {
    name: 'the reserved CONNECT flag bit',
    when: 'first',
    bytes: connect({ extraFlags: 0x01 }),
    reason: 'invalid_connect_flags',
  },
  {
    name: 'password flag without username flag',
    when: 'first',
    bytes: connect({ username: null, password: true }),
    reason: 'invalid_connect_flags',
  },
  {
    name: 'trailing bytes after the CONNECT fields',
    when: 'first',
    bytes: connect({ trailing: [0x00, 0x00] }),
    reason: 'malformed_length',
  },
  {
    name: 'a CONNECT whose fields run past its remaining length',
    when: 'first',
    bytes: packet(
      1,
      0,
      Buffer.concat([str('MQTT'), Buffer.from([4, 0x02]), u16(60), u16(10), Buffer.from('abc')]),
    ),
    reason: 'malformed_length',
  },
  {
    name: 'CONNECT with fixed header flags',
    when: 'first',
    bytes: connect({ headerFlags: 0x1 }),
    reason: 'reserved_flags',
  },
  {
    name: 'an unknown protocol name',
    when: 'first',
    bytes: connect({ name: 'MQTX' }),
    reason: 'invalid_protocol',
  },
  {
    name: 'MQIsdp with protocol level 4',
    when: 'first',
    bytes: connect({ name: 'MQIsdp' }),
    reason: 'unsupported_protocol_level',
  },
  {
    name: 'a remaining length of 5 bytes',
    when: 'first',
    bytes: Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01]),
    reason: 'malformed_length',
  },
  // MQTT-3.1.0-1: the first packet must be a CONNECT.
  {
    name: 'PUBLISH before CONNECT',
    when: 'first',
    bytes: publish('devices/pass-dev/t'),
    reason: 'not_connected',
  },
  {
    name: 'SUBSCRIBE before CONNECT',
    when: 'first',
    bytes: subscribe([['devices/pass-dev/#', 0]]),
    reason: 'not_connected',
  },
  {
    name: 'PINGREQ before CONNECT',
    when: 'first',
    bytes: Buffer.from([0xc0, 0x00]),
    reason: 'not_connected',
  },
  {
    name: 'packet type 0 before CONNECT',
    when: 'first',
    bytes: Buffer.from([0x00, 0x00]),
    reason: 'not_connected',
  },
  // MQTT-3.1.0-2: a second CONNECT.
  {
    name: 'a second CONNECT',
    when: 'authenticated',
    bytes: connect({ clientId: 'pass-dev-again' }),
    reason: 'second_connect',
  },
  // PUBLISH
  {
    name: 'PUBLISH QoS 3',
    when: 'authenticated',
    bytes: publish('devices/pass-dev/t', { flags: 0x06 }),
    reason: 'invalid_qos',
  },
  {
    name: 'PUBLISH QoS 0 with DUP',
    when: 'authenticated',
    bytes: publish('devices/pass-dev/t', { flags: 0x08 }),
    reason: 'reserved_flags',
  },
  {
    name: 'PUBLISH topic with +',
    when: 'authenticated',
    bytes: publish('devices/pass-dev/+'),
    reason: 'invalid_topic',
  },
  {
    name: 'PUBLISH topic with #',
    when: 'authenticated',
    bytes: publish('devices/pass-dev/#'),
    reason: 'invalid_topic',
  },
  {
    name: 'PUBLISH topic with + inside a level',
    when: 'authenticated',
    bytes: publish('devices/pass-dev/a+b'),
    reason: 'invalid_topic',
  },
  { name: 'PUBLISH empty topic', when: 'authenticated', bytes: publish(''), reason: 'invalid_topic' },
  {
    name: 'PUBLISH topic with invalid UTF-8',
    when: 'authenticated',
    bytes: publish(Buffer.concat([Buffer.from('devices/pass-dev/'), Buffer.from([0xc3, 0x28])]), {
      flags: 0x02,
    }),
    reason: 'invalid_string',
  },
  {
    name: 'PUBLISH topic with U+0000',
    when: 'authenticated',
    bytes: publish(Buffer.concat([Buffer.from('devices/pass-dev/'), Buffer.from([0x00])]), { flags: 0x02 }),
    reason: 'invalid_string',
  },
  {
    name: 'PUBLISH QoS 1 with packet id 0',
    when: 'authenticated',
    bytes: publish('devices/pass-dev/t', { flags: 0x02, id: 0 }),
    reason: 'packet_id_zero',
  },
  {
    name: 'PUBLISH QoS 2 with packet id 0',
    when: 'authenticated',
    bytes: publish('devices/pass-dev/t', { flags: 0x04, id: 0 }),
    reason: 'packet_id_zero',
  },
  {
    name: 'PUBLISH QoS 1 too short for its packet id',
    when: 'authenticated',
    bytes: packet(3, 0x02, Buffer.concat([str('devices/pass-dev/t'), Buffer.from([0x01])])),
    reason: 'malformed_length',
  },
  {
    name: 'PUBLISH topic length past the remaining length',
    when: 'authenticated',
    bytes: packet(3, 0, Buffer.concat([u16(200), Buffer.from('devices/pass-dev/t')])),
    reason: 'malformed_length',
  },
  // SUBSCRIBE
  {
    name: 'SUBSCRIBE with flags 0',
    when: 'authenticated',
    bytes: subscribe([['devices/pass-dev/#', 0]], { flags: 0 }),
    reason: 'reserved_flags',
  },
  {
    name: 'SUBSCRIBE with packet id 0',
    when: 'authenticated',
    bytes: subscribe([['devices/pass-dev/#', 0]], { id: 0 }),
    reason: 'packet_id_zero',
  },
  { name: 'SUBSCRIBE without a filter', when: 'authenticated', bytes: subscribe([]), reason: 'no_filters' },
  {
    name: 'SUBSCRIBE filter with U+0000',
    when: 'authenticated',
    bytes: subscribe([[[0x61, 0x00], 0]]),
    reason: 'invalid_string',
  },
  {
    name: 'SUBSCRIBE filter with invalid UTF-8',
    when: 'authenticated',
    bytes: subscribe([[BAD_UTF8, 0]]),
    reason: 'invalid_string',
  },
  {
    name: 'SUBSCRIBE filter with # not last',
    when: 'authenticated',
    bytes: subscribe([['devices/#/x', 0]]),
    reason: 'invalid_filter',
  },
  {
    name: 'SUBSCRIBE filter with # inside a level',
    when: 'authenticated',
    bytes: subscribe([['devices/pass-dev#', 0]]),
    reason: 'invalid_filter',
  },
  {
    name: 'SUBSCRIBE filter with + inside a level',
    when: 'authenticated',
    bytes: subscribe([['devices/pass-dev/a+', 0]]),
    reason: 'invalid_filter',
  },
  {
    name: 'SUBSCRIBE empty filter',
    when: 'authenticated',
    bytes: subscribe([['', 0]]),
    reason: 'invalid_filter',
  },
  {
    name: 'SUBSCRIBE with a bad second filter',
    when: 'authenticated',
    bytes: subscribe([
      ['devices/pass-dev/ok', 0],
      ['x/++', 1],
    ]),
    reason: 'invalid_filter',
  },
  {
    name: 'SUBSCRIBE requested QoS 3',
    when: 'authenticated',
    bytes: subscribe([['devices/pass-dev/#', 3]]),
    reason: 'invalid_qos',
  },
  {
    name: 'SUBSCRIBE reserved bits in the QoS byte',
    when: 'authenticated',
    bytes: subscribe([['devices/pass-dev/#', 0x04]]),
    reason: 'invalid_qos',
  },
  {
    name: 'SUBSCRIBE filter without its QoS byte',
    when: 'authenticated',
    bytes: packet(8, 2, Buffer.concat([u16(1), str('devices/pass-dev/#')])),
    reason: 'malformed_length',
  },
  // UNSUBSCRIBE
  {
    name: 'UNSUBSCRIBE with flags 0',
    when: 'authenticated',
    bytes: unsubscribe(['devices/pass-dev/#'], { flags: 0 }),
    reason: 'reserved_flags',
  },
  {
    name: 'UNSUBSCRIBE with packet id 0',
    when: 'authenticated',
    bytes: unsubscribe(['devices/pass-dev/#'], { id: 0 }),
    reason: 'packet_id_zero',
  },
  {
    name: 'UNSUBSCRIBE without a filter',
    when: 'authenticated',
    bytes: unsubscribe([]),
    reason: 'no_filters',
  },
  {
    name: 'UNSUBSCRIBE filter with # not last',
    when: 'authenticated',
    bytes: unsubscribe(['#/a']),
    reason: 'invalid_filter',
  },
  {
    name: 'UNSUBSCRIBE filter with U+0000',
    when: 'authenticated',
    bytes: unsubscribe([Buffer.from([0x00])]),
    reason: 'invalid_string',
  },
  // Acknowledgements, PINGREQ, DISCONNECT
  {
    name: 'PUBACK with packet id 0',
    when: 'authenticated',
    bytes: packet(4, 0, u16(0)),
    reason: 'packet_id_zero',
  },
  {
    name: 'PUBACK with 3 bytes',
    when: 'authenticated',
    bytes: packet(4, 0, [0, 1, 0]),
    reason: 'malformed_length',
  },
  { name: 'PUBREC with flags', when: 'authenticated', bytes: packet(5, 2, u16(1)), reason: 'reserved_flags' },
  {
    name: 'PUBREL with flags 0',
    when: 'authenticated',
    bytes: packet(6, 0, u16(1)),
    reason: 'reserved_flags',
  },
  {
    name: 'PUBCOMP with packet id 0',
    when: 'authenticated',
    bytes: packet(7, 0, u16(0)),
    reason: 'packet_id_zero',
  },
  {
    name: 'PINGREQ with a body',
    when: 'authenticated',
    bytes: packet(12, 0, [0]),
    reason: 'malformed_length',
  },
  { name: 'PINGREQ with flags', when: 'authenticated', bytes: packet(12, 1, []), reason: 'reserved_flags' },
  {
    name: 'DISCONNECT with flags',
    when: 'authenticated',
    bytes: packet(14, 2, []),
    reason: 'reserved_flags',
  },
  // Packets only a server sends, and the reserved types.
  {
    name: 'CONNACK from a client',
    when: 'authenticated',
    bytes: packet(2, 0, [0, 0]),
    reason: 'reserved_packet_type',
  },
  {
    name: 'SUBACK from a client',
    when: 'authenticated',
    bytes: packet(9, 0, [0, 1, 0]),
    reason: 'reserved_packet_type',
  },
  {
    name: 'UNSUBACK from a client',
    when: 'authenticated',
    bytes: packet(11, 0, [0, 1]),
    reason: 'reserved_packet_type',
  },
  {
    name: 'PINGRESP from a client',
    when: 'authenticated',
    bytes: packet(13, 0, []),
    reason: 'reserved_packet_type',
  },
  { name: 'packet type 0', when: 'authenticated', bytes: packet(0, 0, []), reason: 'reserved_packet_type' },
  { name: 'packet type 15', when: 'authenticated', bytes: packet(15, 0, []), reason: 'reserved_packet_type' },
  {
    name: 'a remaining length of 5 bytes after CONNECT',
    when: 'authenticated',
    bytes: Buffer.from([0x30, 0x80, 0x80, 0x80, 0x80, 0x01]),
    reason: 'malformed_length',
  },
]

describe('MQTT 3.1.1 "MUST close": closed without a reply, counted, logged; the broker serves on', () => {
  let gw: LanFixture
  let sentinel: RawClient
  let caseNo = 0

  beforeAll(async () => {
    gw = await LanFixture.start()
    // A device that stays connected through every case: each case ends with a PINGREQ round trip on it.
    sentinel = await RawClient.authenticated(gw.port('tcp'), 'pass-dev-sentinel')
  })

  afterAll(async () => {
    sentinel?.destroy()
    await gw?.stop()
  })

  it.each(CASES)('$name: closed, no reply, $reason counted and logged', async (c) => {
    const before = gw.protocolErrors()
    const eventsBefore = gw.logs.events('protocol_violation').length
    const offersBefore = gw.offers.length
    caseNo++
    const client =
      c.when === 'first'
        ? await RawClient.connect(gw.port('tcp'))
        : await RawClient.authenticated(gw.port('tcp'), `pass-dev-${caseNo}`)
    client.mark()
    client.send(c.bytes)
    const outcome = await client.outcome()

    expect(outcome.closed).toBe(true)
    const expectedReply = c.reason === 'unsupported_protocol_level' ? '20020001' : ''
    expect(outcome.bytes.toString('hex')).toBe(expectedReply)
    const after = gw.protocolErrors()
    const delta = Object.fromEntries(
      Object.keys(after)
        .filter((k) => after[k] !== before[k])
        .map((k) => [k, after[k]! - (before[k] ?? 0)]),
    )
    expect(delta).toEqual({ [c.reason]: 1 })
    if (c.reason !== 'unsupported_protocol_level') {
      const events = gw.logs.events('protocol_violation').slice(eventsBefore)
      expect(events).toHaveLength(1)
      expect(events[0]).toMatchObject({
        level: 40,
        security: true,
        reason: c.reason,
        listener: 'plain',
        remoteAddress: '127.0.0.1',
        ...(c.when === 'authenticated' && { device: PASSWORD_DEVICE.id, clientId: `pass-dev-${caseNo}` }),
      })
    }
    expect(gw.offers.length).toBe(offersBefore)

    sentinel.packets.length = 0
    sentinel.send(Buffer.from([0xc0, 0x00]))
    await sentinel.waitFor('pingresp')
  })

  it('MQTT 5: CONNECT level 5 is answered CONNACK 1 (unacceptable protocol level) and closed', async () => {
    const before = gw.protocolErrors().unsupported_protocol_level!
    const client = await RawClient.connect(gw.port('tcp'))
    client.send(
      mqttPacket.generate({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 5,
        clientId: 'pass-dev-v5',
        clean: true,
        keepalive: 60,
        username: 'pass-dev',
        password: Buffer.from(PASSWORD_DEVICE.password),
        properties: { sessionExpiryInterval: 10 },
      }),
    )
    const outcome = await client.outcome()
    expect(outcome.closed).toBe(true)
    expect(outcome.bytes.toString('hex')).toBe('20020001')
    expect(gw.protocolErrors().unsupported_protocol_level).toBe(before + 1)
    expect(
      await gw.logs.waitFor((r) => r.event === 'protocol_refused' && r.clientId === undefined),
    ).toMatchObject({
      level: 40,
      reason: 'unsupported_protocol_level',
      remoteAddress: '127.0.0.1',
    })

    // mqtt.js as an MQTT 5 client: refused, never connected.
    const err = await mqtt
      .connectAsync({
        host: '127.0.0.1',
        port: gw.port('tcp'),
        protocolVersion: 5,
        username: 'pass-dev',
        password: PASSWORD_DEVICE.password,
        clientId: 'pass-dev-v5b',
        reconnectPeriod: 0,
        connectTimeout: 5000,
      })
      .then(
        () => null,
        (e: unknown) => e as Error & { code?: number },
      )
    expect(err).not.toBeNull()
    expect(gw.protocolErrors().unsupported_protocol_level).toBe(before + 2)
  })

  it('what 3.1.1 allows passes: UTF-8 beyond ASCII, U+FEFF, whole-level wildcards, empty payloads, MQTT 3.1', async () => {
    const client = await RawClient.authenticated(gw.port('tcp'), 'pass-dev-\u00a0ok')
    const offersBefore = gw.offers.length
    // Filters first (a PUBLISH is answered only after the uplink took it, so order the exchange).
    client.send(
      subscribe(
        [
          ['devices/pass-dev/#', 1],
          ['devices/+/x', 0],
          ['+', 0],
          ['#', 0],
          ['devices/pass-dev/+/é', 2],
        ],
        { id: 20 },
      ),
    )
    client.send(unsubscribe(['devices/+/x', '#'], { id: 21 }))
    const suback = (await client.waitFor('suback')) as mqttPacket.ISubackPacket
    expect(suback.messageId).toBe(20)
    expect(suback.granted).toHaveLength(5)
    expect(((await client.waitFor('unsuback')) as mqttPacket.IUnsubackPacket).messageId).toBe(21)

    const topics = [
      'devices/pass-dev/température',
      'devices/pass-dev/\u{1f600}',
      'devices/pass-dev/\ufeffbom',
      'devices/pass-dev/empty',
    ]
    topics.forEach((topic, i) => {
      client.send(publish(topic, { flags: 0x02, id: i + 1, ...(i === 3 && { payload: '' }) }))
    })
    // Each is acknowledged, taken for the cloud, and delivered back through devices/pass-dev/#.
    const deadline = Date.now() + 5000
    const count = (cmd: string) => client.packets.filter((p) => p.cmd === cmd).length
    while ((count('puback') < 4 || count('publish') < 4) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10))
    const acks = client.packets
      .filter((p) => p.cmd === 'puback')
      .map((p) => (p as mqttPacket.IPubackPacket).messageId)
    expect(acks.sort()).toEqual([1, 2, 3, 4])
    expect(gw.offers.slice(offersBefore).map((o) => o.topic)).toEqual(topics)
    const delivered = client.packets.filter((p) => p.cmd === 'publish') as mqttPacket.IPublishPacket[]
    expect(delivered.map((p) => p.topic).sort()).toEqual([...topics].sort())
    client.send(packet(12, 0, []))
    await client.waitFor('pingresp')
    client.mark()
    client.send(packet(14, 0, []))
    const outcome = await client.outcome()
    expect(outcome.closed).toBe(true)
    expect(outcome.bytes.length).toBe(0)

    const v31 = await mqtt.connectAsync({
      host: '127.0.0.1',
      port: gw.port('tcp'),
      protocolId: 'MQIsdp',
      protocolVersion: 3,
      username: 'pass-dev',
      password: PASSWORD_DEVICE.password,
      clientId: 'pass-dev-31',
      reconnectPeriod: 0,
    })
    await v31.publishAsync('devices/pass-dev/v31', 'hello', { qos: 1 })
    expect(gw.offers.at(-1)).toMatchObject({ topic: 'devices/pass-dev/v31', deviceId: 'pass-dev', qos: 1 })
    await v31.endAsync()
  })

  it('a device closed for a violation after authentication has its Will published', async () => {
    const client = await RawClient.connect(gw.port('tcp'))
    client.send(
      mqttPacket.generate({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 4,
        clientId: 'pass-dev-will',
        clean: true,
        keepalive: 60,
        username: PASSWORD_DEVICE.username,
        password: Buffer.from(PASSWORD_DEVICE.password),
        will: { topic: 'devices/pass-dev/status', payload: Buffer.from('lost'), qos: 1, retain: false },
      }),
    )
    expect(((await client.waitFor('connack')) as mqttPacket.IConnackPacket).returnCode).toBe(0)
    client.send(publish('devices/pass-dev/+'))
    expect((await client.outcome()).closed).toBe(true)
    const deadline = Date.now() + 5000
    while (!gw.offers.some((o) => o.topic === 'devices/pass-dev/status') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10))
    expect(
      await gw.logs.waitFor(
        (r) => r.clientId === 'pass-dev-will' && r.reason === 'invalid_topic' && !r.security,
      ),
    ).toMatchObject({
      level: 40,
      device: PASSWORD_DEVICE.id,
      msg: 'device disconnected by the gateway: publish: topic is empty or holds a wildcard',
    })
    expect(gw.offers.filter((o) => o.topic === 'devices/pass-dev/status')).toMatchObject([
      { deviceId: PASSWORD_DEVICE.id, clientId: 'pass-dev-will', payload: Buffer.from('lost'), qos: 1 },
    ])
  })

  it('after every refusal a real client connects, subscribes, publishes and receives', async () => {
    const client = await mqtt.connectAsync({
      host: '127.0.0.1',
      port: gw.port('tcp'),
      username: 'pass-dev',
      password: PASSWORD_DEVICE.password,
      clientId: 'pass-dev-final',
      reconnectPeriod: 0,
    })
    const got: string[] = []
    client.on('message', (topic, payload) => got.push(`${topic} ${payload}`))
    await client.subscribeAsync('devices/pass-dev/final', { qos: 1 })
    await client.publishAsync('devices/pass-dev/final', 'still here', { qos: 1 })
    const deadline = Date.now() + 5000
    while (got.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
    expect(got).toEqual(['devices/pass-dev/final still here'])
    expect(gw.offers.at(-1)).toMatchObject({
      topic: 'devices/pass-dev/final',
      payload: Buffer.from('still here'),
    })
    await client.endAsync()
    // Nothing the guard refused was counted as anything else.
    expect(gw.protocolErrors().connection_error).toBe(0)
    expect(gw.logs.records.filter((r) => r.level === 50 || r.level === 60)).toEqual([])
  })
})
