import { describe, expect, it } from 'vitest'
import { macOpen, macProtect, readMacHeader } from '../../crypto/mac0.js'
import { MAX_SEQ } from '../../crypto/partial-iv.js'
import { Alg, type Direction, type MacAlg } from '../../crypto/types.js'
import { bstr, deviceContext, flip, hex, MAC_ALGS } from './fixtures.js'

const TOPIC = 'devices/tiny/mac'
const MAX = 4096
const reading = Buffer.from('{"id":"tiny","t":1732350000,"temp":21.5,"hum":48.25,"batt":3.01}')
const TAG_LENGTH: Record<MacAlg, number> = { 4: 8, 5: 32 }

describe.each(MAC_ALGS.map((alg) => [alg]))('Mac0 with alg %i', (mac: MacAlg) => {
  const ctx = deviceContext(Alg.AES_CCM_16_64_128, 0x01, mac)
  const directions: Direction[] = ['device-to-gateway', 'gateway-to-device']

  it.each(directions)('round-trips %s', (direction) => {
    for (const seq of [0, 255, 256, 65535, MAX_SEQ]) {
      for (const payload of [Buffer.alloc(0), reading]) {
        const object = macProtect(ctx, direction, seq, payload, TOPIC)
        expect(macOpen(ctx, direction, object, TOPIC, MAX)).toEqual({ payload, seq })
        expect(readMacHeader(object, MAX)).toEqual({ kid: hex('01'), seq })
      }
    }
  })

  it('has the documented layout and size', () => {
    const object = macProtect(ctx, 'device-to-gateway', 0x1234, reading, TOPIC)
    // [h'', {4: h'01', 6: h'1234'}, bstr(payload), bstr(tag)]
    expect(object.subarray(0, 76)).toEqual(Buffer.concat([hex('8440a204410106421234'), bstr(reading)]))
    expect(object.subarray(76, 77)).toEqual(hex(TAG_LENGTH[mac] === 8 ? '48' : '5820').subarray(0, 1))
    expect(object.length).toBe(76 + (TAG_LENGTH[mac] === 8 ? 9 : 34))
  })

  it('fails with bad_tag or malformed when any byte is changed, and never throws', () => {
    const object = macProtect(ctx, 'device-to-gateway', 0x1234, reading, TOPIC)
    const payloadStart = 12
    for (let i = 0; i < object.length; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const result = macOpen(ctx, 'device-to-gateway', flip(object, i, mask), TOPIC, MAX)
        const isBody = i >= payloadStart && i < payloadStart + reading.length
        const isTag = i >= object.length - TAG_LENGTH[mac]
        if (isBody || isTag) expect(result, `byte ${i} ^ ${mask}`).toEqual({ failure: 'bad_tag' })
        else
          expect(['bad_tag', 'malformed'], `byte ${i} ^ ${mask}`).toContain(
            (result as { failure: string }).failure,
          )
      }
    }
  })

  it('fails with the other direction key, another device, another topic', () => {
    const object = macProtect(ctx, 'device-to-gateway', 3, reading, TOPIC)
    expect(macOpen(ctx, 'gateway-to-device', object, TOPIC, MAX)).toEqual({ failure: 'bad_tag' })
    const otherSecret = deviceContext(Alg.AES_CCM_16_64_128, 0x01, mac, 0x22)
    expect(macOpen(otherSecret, 'device-to-gateway', object, TOPIC, MAX)).toEqual({ failure: 'bad_tag' })
    expect(
      macOpen(deviceContext(Alg.AES_CCM_16_64_128, 0x02, mac), 'device-to-gateway', object, TOPIC, MAX),
    ).toEqual({
      failure: 'bad_tag',
    })
    expect(macOpen(ctx, 'device-to-gateway', object, 'devices/tiny/other', MAX)).toEqual({
      failure: 'bad_tag',
    })
  })

  it('fails when the sequence number is rewritten (it is in the external AAD)', () => {
    const object = macProtect(ctx, 'device-to-gateway', 0x1234, reading, TOPIC)
    const rewritten = Buffer.from(object)
    rewritten[9] = 0x35
    expect(readMacHeader(rewritten, MAX)).toEqual({ kid: hex('01'), seq: 0x1235 })
    expect(macOpen(ctx, 'device-to-gateway', rewritten, TOPIC, MAX)).toEqual({ failure: 'bad_tag' })
  })

  it('fails on every truncation and on oversize input', () => {
    const object = macProtect(ctx, 'device-to-gateway', 3, reading, TOPIC)
    for (let length = 0; length < object.length; length++) {
      expect(macOpen(ctx, 'device-to-gateway', object.subarray(0, length), TOPIC, MAX)).toEqual({
        failure: 'malformed',
      })
    }
    expect(macOpen(ctx, 'device-to-gateway', object, TOPIC, object.length - 1)).toEqual({
      failure: 'oversize',
    })
  })
})

describe('Mac0 framing', () => {
  const ctx = deviceContext(Alg.AES_CCM_16_64_128, 0x01, Alg.HMAC_256_64)
  const object = macProtect(ctx, 'device-to-gateway', 0x1234, reading, TOPIC)
  const rest = object.subarray(10)
  const kid = bstr(hex('01'))
  const piv = bstr(hex('1234'))
  const tag = object.subarray(object.length - 8)
  const frame = (...parts: Buffer[]) => Buffer.concat(parts)

  it('is rebuilt exactly by the hand-built frame', () => {
    expect(frame(hex('8440a2'), hex('04'), kid, hex('06'), piv, bstr(reading), bstr(tag))).toEqual(object)
  })

  it.each([
    ['trailing byte', frame(object, hex('00'))],
    ['COSE_Mac0 tag 17', frame(hex('d1'), object)],
    ['duplicate Partial IV', frame(hex('8440a3'), hex('04'), kid, hex('06'), piv, hex('06'), piv, rest)],
    ['keys out of order', frame(hex('8440a2'), hex('06'), piv, hex('04'), kid, rest)],
    [
      'non-minimal payload length',
      frame(hex('8440a2'), hex('04'), kid, hex('06'), piv, hex('5900'), hex('40'), reading, bstr(tag)),
    ],
    [
      'tag truncated to 7 bytes',
      frame(hex('8440a2'), hex('04'), kid, hex('06'), piv, bstr(reading), bstr(tag.subarray(0, 7))),
    ],
    [
      'tag of 32 bytes for alg 4',
      frame(hex('8440a2'), hex('04'), kid, hex('06'), piv, bstr(reading), bstr(Buffer.alloc(32))),
    ],
    ['three elements', frame(hex('8340a2'), hex('04'), kid, hex('06'), piv, bstr(reading))],
  ])('refuses a %s as malformed', (_name, bytes) => {
    expect(macOpen(ctx, 'device-to-gateway', bytes, TOPIC, MAX)).toEqual({ failure: 'malformed' })
  })
})

describe('Mac0 size', () => {
  it('adds 21 bytes to a 64-byte payload with HMAC 256/64 and 46 with HMAC 256/256 (1-byte kid, 2-byte Partial IV)', () => {
    const size = (mac: MacAlg) =>
      macProtect(deviceContext(Alg.AES_CCM_16_64_128, 0x01, mac), 'device-to-gateway', 0x1234, reading, TOPIC)
        .length
    expect(size(Alg.HMAC_256_64)).toBe(85)
    expect(size(Alg.HMAC_256_256)).toBe(110)
  })
})
