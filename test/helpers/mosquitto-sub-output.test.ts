import { describe, expect, it } from 'vitest'
import { parseSubLine } from './mosquitto-sub-output.js'

// Captured from `stdbuf -oL mosquitto_sub -d -F '%t|%q|%x' ...` (mosquitto 2.0.11).
const CAPTURED = [
  'Client (null) sending CONNECT',
  'Client (null) received CONNACK (0)',
  'Client (null) sending SUBSCRIBE (Mid: 1, Topic: #, QoS: 1, Options: 0x00)',
  'Client (null) received SUBACK',
  'Subscribed (mid: 1): 1',
  "Client (null) received PUBLISH (d0, q1, r0, m1, 'a/b|c', ... (11 bytes))",
  'Client (null) sending PUBACK (m1, rc0)',
  'a/b|c|1|68656c6c6f0a776f726c64',
  "Client (null) received PUBLISH (d0, q0, r0, m0, 'x', ... (0 bytes))",
  'x|0|',
  'Client (null) sending DISCONNECT',
]

describe('parseSubLine', () => {
  it('classifies captured output', () => {
    expect(CAPTURED.map(parseSubLine)).toEqual([
      { kind: 'debug', text: CAPTURED[0] },
      { kind: 'debug', text: CAPTURED[1] },
      { kind: 'debug', text: CAPTURED[2] },
      { kind: 'debug', text: CAPTURED[3] },
      { kind: 'subscribed', granted: [1] },
      { kind: 'debug', text: CAPTURED[5] },
      { kind: 'debug', text: CAPTURED[6] },
      { kind: 'message', topic: 'a/b|c', qos: 1, payload: Buffer.from('hello\nworld') },
      { kind: 'debug', text: CAPTURED[8] },
      { kind: 'message', topic: 'x', qos: 0, payload: Buffer.alloc(0) },
      { kind: 'debug', text: CAPTURED[10] },
    ])
  })

  it('reads every granted code of a multi-filter SUBACK, refusals included', () => {
    expect(parseSubLine('Subscribed (mid: 3): 0, 128, 2')).toEqual({
      kind: 'subscribed',
      granted: [0, 128, 2],
    })
  })

  it('takes a topic that looks like a message line apart from the right', () => {
    expect(parseSubLine('t|1|ff|2|00')).toEqual({
      kind: 'message',
      topic: 't|1|ff',
      qos: 2,
      payload: Buffer.from([0]),
    })
  })

  it('does not take odd-length hex or a bad QoS for a message', () => {
    expect(parseSubLine('t|1|abc')).toEqual({ kind: 'debug', text: 't|1|abc' })
    expect(parseSubLine('t|3|ab')).toEqual({ kind: 'debug', text: 't|3|ab' })
  })
})
