import { generateKeyPairSync } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { CloudProtector } from '../../bridge/cloud-protector.js'
import { publishPacketBytes } from '../../bridge/packet-size.js'
import {
  cloudTopicProblem,
  ENVELOPE_OVERHEAD,
  HPKE_OVERHEAD,
  packetProblem,
  unsendableAtLan,
} from '../../bridge/sendable.js'
import type { TopicMapping } from '../../config/index.js'
import { generateHpkeKeyPair } from '../../crypto/hpke.js'
import type { UplinkMessage } from '../../gateway/uplink.js'

const GATEWAY = 'gw-sendable'
const plain: TopicMapping = { local: 'devices/', cloud: 'sites/s1/devices/', mode: 'client-to-broker' }
const sealed: TopicMapping = { ...plain, sealFor: 'analytics' }
const recipient = await generateHpkeKeyPair()
const protector = new CloudProtector(
  GATEWAY,
  generateKeyPairSync('ed25519').privateKey,
  new Map([['analytics', { kid: Buffer.alloc(32, 9), publicKey: recipient.publicKey }]]),
)
const message = (payloadBytes: number, topic = 'devices/dev-1/t'): UplinkMessage => ({
  topic,
  payload: Buffer.alloc(payloadBytes, 5),
  qos: 1,
  retain: false,
  deviceId: 'dev-1',
  clientId: 'dev-1',
  receivedAt: 1_700_000_000_123,
})
const LONGEST = { 'gw-seq': String(Number.MAX_SAFE_INTEGER), 'gw-id': GATEWAY, 'gw-device': 'dev-1' }

/** The PUBLISH the bridge writes for `m` under `mapping` with the largest gw-seq: its whole size. */
function largestPublish(m: UplinkMessage, mapping: TopicMapping): number {
  const topic = mapping.cloud + m.topic.slice(mapping.local.length)
  const envelope = protector.protect(
    { seq: Number.MAX_SAFE_INTEGER, message: { ...m, protection: protector.protectionFor(mapping) } },
    topic,
    mapping,
  )
  return publishPacketBytes(Buffer.byteLength(topic), envelope.length, LONGEST).total
}

describe('cloudTopicProblem', () => {
  it('refuses an empty topic, one over 65,535 bytes, and text a broker refuses (bridge/topic-text.ts)', () => {
    expect(cloudTopicProblem('a/b')).toBeUndefined()
    expect(cloudTopicProblem('t'.repeat(65_535))).toBeUndefined()
    expect(cloudTopicProblem('')).toBe('its cloud topic cannot be sent: it is empty')
    expect(cloudTopicProblem('é'.repeat(32_768))).toBe('its cloud topic is 65536 bytes; MQTT allows 65535')
    expect(cloudTopicProblem('a/+/b')).toBe('its cloud topic cannot be sent: it holds the wildcard "+" at 2')
    expect(cloudTopicProblem('a/#')).toBe('its cloud topic cannot be sent: it holds the wildcard "#" at 2')
    expect(cloudTopicProblem('a\u0000b')).toBe(
      'its cloud topic cannot be sent: it holds the control character U+0000 at 1',
    )
    expect(cloudTopicProblem('a\uffff')).toBe(
      'its cloud topic cannot be sent: it holds the non-character U+FFFF at 1',
    )
  })
})

describe('packetProblem', () => {
  it("refuses a PUBLISH over the broker's Maximum Packet Size, and over MQTT's largest", () => {
    const total = publishPacketBytes(10, 1000, LONGEST).total
    expect(packetProblem(10, 1000, LONGEST, total)).toBeUndefined()
    expect(packetProblem(10, 1000, LONGEST, total - 1)).toBe(
      `its PUBLISH would be ${total} bytes, over the cloud broker's Maximum Packet Size of ${total - 1}`,
    )
    expect(packetProblem(10, 1000, undefined, undefined)).toBeUndefined()
    expect(packetProblem(10, 268_435_455, undefined, undefined)).toBe(
      'its PUBLISH would be 268435474 bytes; MQTT allows 268435455 after the fixed header',
    )
  })
})

describe('unsendableAtLan', () => {
  it('bounds the envelope from above without making it (plain and HPKE-sealed)', () => {
    for (const bytes of [0, 1, 100, 10_000, 70_000]) {
      for (const m of [message(bytes), message(bytes, `devices/dev-1/${'x'.repeat(300)}`)]) {
        const strings =
          Buffer.byteLength(GATEWAY) + Buffer.byteLength(m.deviceId) + Buffer.byteLength(m.topic)
        const envelope = (mapping: TopicMapping) =>
          protector.protect(
            { seq: Number.MAX_SAFE_INTEGER, message: { ...m, protection: protector.protectionFor(mapping) } },
            'sites/s1/x',
            mapping,
          ).length
        expect(envelope(plain)).toBeLessThanOrEqual(bytes + strings + ENVELOPE_OVERHEAD)
        expect(envelope(sealed)).toBeLessThanOrEqual(bytes + strings + ENVELOPE_OVERHEAD + HPKE_OVERHEAD)
      }
    }
  })

  it('refuses a message exactly when its PUBLISH would be over the Maximum Packet Size', () => {
    for (const mapping of [plain, sealed]) {
      const m = message(50_000)
      const size = largestPublish(m, mapping)
      expect(unsendableAtLan(m, mapping, GATEWAY, protector, { mqtt5: true, maxPacketBytes: size })).toBe(
        undefined,
      )
      expect(unsendableAtLan(m, mapping, GATEWAY, protector, { mqtt5: true, maxPacketBytes: size - 1 })).toBe(
        `its PUBLISH would be ${size} bytes, over the cloud broker's Maximum Packet Size of ${size - 1}`,
      )
    }
  })

  it('checks the mapped topic whether or not the broker set a limit', () => {
    const long = message(10, `devices/${'t'.repeat(65_530 - 'devices/'.length)}`)
    expect(unsendableAtLan(long, plain, GATEWAY, protector, { mqtt5: true })).toBe(
      'its cloud topic is 65539 bytes; MQTT allows 65535',
    )
    expect(unsendableAtLan(message(300_000), plain, GATEWAY, protector, { mqtt5: false })).toBeUndefined()
  })
})
