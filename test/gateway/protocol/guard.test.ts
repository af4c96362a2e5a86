import { Duplex } from 'node:stream'
import mqttPacket from 'mqtt-packet'
import { describe, expect, it } from 'vitest'
import { ProtocolGuard } from '../../../gateway/protocol/guard.js'
import type { ProtocolViolation } from '../../../gateway/protocol/violations.js'

/**
 * The transport under the guard, in memory, so the tests choose every chunk
 * boundary (TCP would coalesce them): `deliver` is a chunk arriving from the
 * client, `written` what the broker sent back through the guard.
 */
class Transport extends Duplex {
  readonly written: Buffer[] = []
  override _read(): void {}
  override _write(chunk: Buffer, _e: BufferEncoding, done: () => void): void {
    this.written.push(chunk)
    done()
  }
  deliver(chunk: Buffer): void {
    this.push(chunk)
  }
}

const LIMITS = { maxPacketBytes: 4096, maxConnectBytes: 512, maxOutboundBytes: 1024 * 1024 }

function setup(limits = LIMITS) {
  const transport = new Transport()
  const violations: ProtocolViolation[] = []
  const guard = new ProtocolGuard(transport, limits, (v) => violations.push(v))
  const out: Buffer[] = []
  guard.on('data', (chunk: Buffer) => out.push(chunk))
  return { transport, guard, violations, out }
}

const tick = () => new Promise((r) => setImmediate(r))

const CONNECT = mqttPacket.generate({
  cmd: 'connect',
  protocolId: 'MQTT',
  protocolVersion: 4,
  clientId: 'dev-1',
  clean: true,
  keepalive: 30,
  username: 'dev-1',
  password: Buffer.from('pw'),
})
const AFTER = Buffer.concat([
  mqttPacket.generate({
    cmd: 'publish',
    topic: 'a/b',
    payload: Buffer.alloc(300, 7),
    qos: 1,
    messageId: 1,
    retain: false,
    dup: false,
  }),
  mqttPacket.generate({ cmd: 'subscribe', messageId: 2, subscriptions: [{ topic: 'a/#', qos: 1 }] }),
  mqttPacket.generate({
    cmd: 'publish',
    topic: 'a/c',
    payload: Buffer.alloc(0),
    qos: 0,
    retain: false,
    dup: false,
  }),
  mqttPacket.generate({ cmd: 'pingreq' }),
])

describe('ProtocolGuard', () => {
  it('passes every byte on, in order, wherever the chunks split, and holds what follows CONNECT until authenticated', async () => {
    const stream = Buffer.concat([CONNECT, AFTER])
    for (let cut = 1; cut < stream.length; cut++) {
      const { transport, guard, violations, out } = setup()
      transport.deliver(stream.subarray(0, cut))
      transport.deliver(stream.subarray(cut))
      await tick()
      // Before authentication only the CONNECT went through.
      expect(Buffer.concat(out).equals(CONNECT), `cut at ${cut}`).toBe(true)
      guard.authenticated()
      await tick()
      expect(Buffer.concat(out).equals(stream), `cut at ${cut}`).toBe(true)
      expect(violations).toEqual([])
      guard.destroy()
    }
  })

  it('passes every byte on when chunks cut packets into three, at 300 seeded pairs of cuts', async () => {
    const stream = Buffer.concat([CONNECT, AFTER, AFTER])
    let seed = 7
    const random = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31
      return seed % n
    }
    for (let k = 0; k < 300; k++) {
      const a = CONNECT.length + random(stream.length - CONNECT.length - 1)
      const b = a + 1 + random(stream.length - a - 1)
      const { transport, guard, violations, out } = setup()
      transport.deliver(CONNECT)
      await tick()
      guard.authenticated()
      transport.deliver(stream.subarray(CONNECT.length, a))
      transport.deliver(stream.subarray(a, b))
      transport.deliver(stream.subarray(b))
      await tick()
      expect(Buffer.concat(out).equals(stream), `cuts at ${a} and ${b}`).toBe(true)
      expect(violations).toEqual([])
      guard.destroy()
    }
  })

  it('passes a stream split into single bytes', async () => {
    const { transport, guard, violations, out } = setup()
    for (const byte of CONNECT) transport.deliver(Buffer.from([byte]))
    await tick()
    guard.authenticated()
    for (const byte of AFTER) transport.deliver(Buffer.from([byte]))
    await tick()
    expect(Buffer.concat(out).equals(Buffer.concat([CONNECT, AFTER]))).toBe(true)
    expect(violations).toEqual([])
  })

  it('passes whole packets of a chunk as a view of that chunk, without copying', async () => {
    const { transport, guard, out } = setup()
    transport.deliver(CONNECT)
    await tick()
    guard.authenticated()
    const chunk = Buffer.from(AFTER)
    transport.deliver(chunk)
    await tick()
    expect(out).toHaveLength(2)
    expect(out[1]!.buffer).toBe(chunk.buffer)
    expect(out[1]!.byteOffset).toBe(chunk.byteOffset)
    expect(out[1]!.length).toBe(chunk.length)
  })

  it('refuses an oversized packet on its header, having read nothing of the body', async () => {
    const { transport, guard, violations, out } = setup()
    transport.deliver(CONNECT)
    await tick()
    guard.authenticated()
    // PUBLISH announcing 268,435,455 bytes: only the 5 header bytes arrive.
    transport.deliver(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]))
    await tick()
    expect(violations).toEqual([
      {
        reason: 'packet_too_large',
        detail: '268435460 bytes announced (limit 4096)',
        packetType: 'publish',
        announcedBytes: 268_435_460,
        limit: 4096,
      },
    ])
    expect(transport.destroyed).toBe(true)
    expect(guard.destroyed).toBe(true)
    expect(Buffer.concat(out).equals(CONNECT)).toBe(true)
  })

  it('holds a CONNECT to maxConnectBytes, and a packet of exactly the limit passes', async () => {
    const exact = mqttPacket.generate({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clientId: 'x',
      clean: true,
      keepalive: 0,
      will: { topic: 't', payload: Buffer.alloc(512 - 21), qos: 0, retain: false },
    })
    expect(exact.length).toBe(512)
    const ok = setup()
    ok.transport.deliver(exact)
    await tick()
    expect(ok.violations).toEqual([])
    expect(Buffer.concat(ok.out).equals(exact)).toBe(true)

    const over = Buffer.from(exact)
    over[1] = over[1]! + 1 // one more byte announced
    const refused = setup()
    refused.transport.deliver(over.subarray(0, 3))
    await tick()
    expect(refused.violations.map((v) => [v.reason, v.announcedBytes, v.limit])).toEqual([
      ['connect_too_large', 513, 512],
    ])
    expect(refused.out).toEqual([])
  })

  it('stops reading the transport while authenticating, and resumes after', async () => {
    const { transport, guard, out } = setup()
    transport.deliver(Buffer.concat([CONNECT, AFTER]))
    await tick()
    expect(transport.isPaused()).toBe(true)
    expect(Buffer.concat(out).equals(CONNECT)).toBe(true)
    guard.authenticated()
    await tick()
    expect(transport.isPaused()).toBe(false)
    expect(Buffer.concat(out).length).toBe(CONNECT.length + AFTER.length)
  })

  it('ignores what follows a DISCONNECT, and passes writes and the end through', async () => {
    const { transport, guard, violations, out } = setup()
    transport.deliver(CONNECT)
    await tick()
    guard.authenticated()
    transport.deliver(Buffer.concat([Buffer.from([0xe0, 0x00]), Buffer.from([0xff, 0xff, 0xff])]))
    await tick()
    expect(violations).toEqual([])
    expect(Buffer.concat(out).equals(Buffer.concat([CONNECT, Buffer.from([0xe0, 0x00])]))).toBe(true)
    guard.write(Buffer.from([0x20, 0x02, 0x00, 0x00]))
    guard.end()
    await tick()
    expect(Buffer.concat(transport.written).toString('hex')).toBe('20020000')
    expect(transport.writableEnded).toBe(true)
  })

  it('is destroyed with its transport, and an error on the transport reaches the broker', async () => {
    const { transport, guard } = setup()
    const errors: Error[] = []
    guard.on('error', (e) => errors.push(e))
    transport.destroy(new Error('ECONNRESET'))
    await tick()
    expect(guard.destroyed).toBe(true)
    expect(errors.map((e) => e.message)).toEqual(['ECONNRESET'])
  })
})
