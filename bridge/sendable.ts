import type { TopicMapping } from '../config/index.js'
import type { UplinkMessage } from '../gateway/uplink.js'
import type { CloudProtector } from './cloud-protector.js'
import { BodyProtection } from './envelope.js'
import { MAX_REMAINING_LENGTH, MAX_STRING_BYTES, publishPacketBytes } from './packet-size.js'
import { topicTextProblem } from './topic-text.js'

/**
 * Why `topic` cannot be a cloud PUBLISH topic, or undefined: over MQTT's 65,535 bytes, or
 * with text a broker refuses (empty, a wildcard, U+0000, a control character, a
 * non-character or a lone surrogate: bridge/topic-text.ts). A broker closes the connection
 * on such a PUBLISH, and the same record sent again would wedge the uplink.
 */
export function cloudTopicProblem(topic: string): string | undefined {
  const bytes = Buffer.byteLength(topic)
  if (bytes > MAX_STRING_BYTES) return `its cloud topic is ${bytes} bytes; MQTT allows ${MAX_STRING_BYTES}`
  const text = topicTextProblem(topic)
  return text === undefined ? undefined : `its cloud topic cannot be sent: ${text}`
}

/**
 * Why a QoS 1 PUBLISH of `payloadBytes` on a topic of `topicBytes` (with these MQTT 5 user
 * properties, when the link speaks MQTT 5) cannot be written, or undefined: over MQTT's
 * largest packet, or over the broker's Maximum Packet Size when it gave one.
 */
export function packetProblem(
  topicBytes: number,
  payloadBytes: number,
  userProperties: Readonly<Record<string, string>> | undefined,
  maxPacketBytes: number | undefined,
): string | undefined {
  const size = publishPacketBytes(topicBytes, payloadBytes, userProperties)
  if (size.remaining > MAX_REMAINING_LENGTH) {
    return `its PUBLISH would be ${size.total} bytes; MQTT allows ${MAX_REMAINING_LENGTH} after the fixed header`
  }
  if (maxPacketBytes !== undefined && size.total > maxPacketBytes) {
    return `its PUBLISH would be ${size.total} bytes, over the cloud broker's Maximum Packet Size of ${maxPacketBytes}`
  }
  return undefined
}

/** Bytes the signed envelope adds around the strings and the body, at most (COSE_Sign1, CBOR heads, numbers). */
export const ENVELOPE_OVERHEAD = 256
/** Bytes HPKE sealing adds to a body, at most (kid up to 32, enc 32, tag 16, CBOR). */
export const HPKE_OVERHEAD = 128
/** The longest gw-seq a message can carry (Number.MAX_SAFE_INTEGER). */
const LONGEST_SEQ = String(Number.MAX_SAFE_INTEGER)

/** What the cloud link's limits are, as far as the gateway knows them. */
export interface CloudLimits {
  /** Whether the link speaks MQTT 5 (the PUBLISH then carries user properties). */
  mqtt5: boolean
  /** The cloud broker's Maximum Packet Size from its last CONNACK; undefined until known or when it set none. */
  maxPacketBytes?: number
}

/**
 * Why `message`, mapped by `mapping`, could never be sent to the cloud, checked when the
 * device publishes it (before its PUBACK) instead of when it leaves the queue: its cloud
 * topic (cloudTopicProblem), and the size of the PUBLISH the bridge will write (packetProblem)
 * with the largest gw-seq. The envelope's size is bounded cheaply; only when that bound does
 * not fit is the envelope made (signed, and sealed when the mapping seals) to measure it.
 */
export function unsendableAtLan(
  message: UplinkMessage,
  mapping: TopicMapping,
  gatewayId: string,
  protector: CloudProtector,
  limits: CloudLimits,
): string | undefined {
  const topic = mapping.cloud + message.topic.slice(mapping.local.length)
  const topicProblem = cloudTopicProblem(topic)
  if (topicProblem) return topicProblem
  const topicBytes = Buffer.byteLength(topic)
  const properties = limits.mqtt5
    ? { 'gw-seq': LONGEST_SEQ, 'gw-id': gatewayId, 'gw-device': message.deviceId }
    : undefined
  const protection = protector.protectionFor(mapping)
  const bound =
    message.payload.length +
    (protection === BodyProtection.hpke ? HPKE_OVERHEAD : 0) +
    Buffer.byteLength(gatewayId) +
    Buffer.byteLength(message.deviceId) +
    Buffer.byteLength(message.topic) +
    ENVELOPE_OVERHEAD
  if (!packetProblem(topicBytes, bound, properties, limits.maxPacketBytes)) return undefined
  const envelope = protector.protect(
    { seq: Number.MAX_SAFE_INTEGER, message: { ...message, protection } },
    topic,
    mapping,
  )
  return packetProblem(topicBytes, envelope.length, properties, limits.maxPacketBytes)
}
