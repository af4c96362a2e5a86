import type { MqttClient } from 'mqtt'
import mqttPacket from 'mqtt-packet'
import { describe, expect, it } from 'vitest'
import { CloudSession } from '../../bridge/cloud-session.js'
import { publishPacketBytes } from '../../bridge/packet-size.js'

const USER_PROPERTIES = { 'gw-seq': '1700000000000123', 'gw-id': 'site-17', 'gw-device': 'boiler-1' }

/** What mqtt-packet (the cloud link's writer) makes of the same QoS 1 PUBLISH. */
function generated(topic: string, payloadBytes: number, mqtt5: boolean): number {
  return mqttPacket.generate(
    {
      cmd: 'publish',
      topic,
      payload: Buffer.alloc(payloadBytes),
      qos: 1,
      messageId: 42,
      retain: false,
      dup: false,
      ...(mqtt5 && { properties: { userProperties: USER_PROPERTIES } }),
    },
    { protocolVersion: mqtt5 ? 5 : 4 },
  ).length
}

describe('publishPacketBytes', () => {
  it('is the size mqtt-packet writes, across the variable-length boundaries, MQTT 5 and 3.1.1', () => {
    for (const mqtt5 of [true, false]) {
      for (const topic of ['t', 'gateways/gw/devices/boiler-1/temp', 'ü'.repeat(300)]) {
        for (const payloadBytes of [0, 1, 60, 127, 128, 16_383, 16_384, 70_000, 2_097_152]) {
          const size = publishPacketBytes(
            Buffer.byteLength(topic),
            payloadBytes,
            mqtt5 ? USER_PROPERTIES : undefined,
          )
          expect(size.total, `${topic.length} ${payloadBytes} ${mqtt5}`).toBe(
            generated(topic, payloadBytes, mqtt5),
          )
        }
      }
    }
  })
})

describe('CloudSession.unsendable', () => {
  const session = (max?: number) => new CloudSession(undefined as unknown as MqttClient, true, max)
  const message = (topic: string, payloadBytes: number) => ({
    topic,
    payload: Buffer.alloc(payloadBytes),
    retain: false,
    userProperties: USER_PROPERTIES,
  })

  it("passes a PUBLISH of exactly the broker's Maximum Packet Size and refuses one byte more", () => {
    const size = generated('t/x', 1000, true)
    expect(session(size).unsendable(message('t/x', 1000))).toBeUndefined()
    expect(session(size - 1).unsendable(message('t/x', 1000))).toBe(
      `its PUBLISH would be ${size} bytes, over the cloud broker's Maximum Packet Size of ${size - 1}`,
    )
    expect(session().unsendable(message('t/x', 10_000_000))).toBeUndefined()
  })

  it('refuses a topic over 65,535 bytes, counted in UTF-8 bytes', () => {
    expect(session().unsendable(message('a'.repeat(65_535), 0))).toBeUndefined()
    expect(session().unsendable(message('ü'.repeat(32_768), 0))).toBe(
      'its cloud topic is 65536 bytes; MQTT allows 65535',
    )
  })
})
