import type { FixedHeader } from '../../core/mqtt-fixed-header.js'
import { checkString, checkTopicFilter, checkTopicName, type StringFault } from './strings.js'
import { PACKET_TYPE_NAMES, type ProtocolViolation, type ProtocolViolationReason } from './violations.js'

export const CONNECT = 1
export const PUBLISH = 3
export const SUBSCRIBE = 8
export const UNSUBSCRIBE = 10
export const PINGREQ = 12
export const DISCONNECT = 14

/** The fixed header flags each client-to-server packet type must carry (MQTT-2.2.2-1, -2); -1: not from a client. */
const REQUIRED_FLAGS = [-1, 0, -1, -2, 0, 0, 0b0010, 0, 0b0010, -1, 0b0010, -1, 0, -1, 0, -1]

/** Protocol levels the gateway speaks, by protocol name: MQTT 3.1.1 and MQTT 3.1. */
const MQTT = Buffer.from('MQTT')
const MQISDP = Buffer.from('MQIsdp')

function violation(reason: ProtocolViolationReason, type: number, detail: string): ProtocolViolation {
  return { reason, detail, packetType: PACKET_TYPE_NAMES[type]! }
}

function stringViolation(fault: Exclude<StringFault, null>, type: number, what: string): ProtocolViolation {
  const detail =
    fault === 'invalid_string'
      ? `${what} is not valid UTF-8 or holds U+0000 or a control character`
      : fault === 'invalid_topic'
        ? `${what} is empty or holds a wildcard`
        : `${what} is empty or has a misplaced wildcard`
  return violation(fault, type, detail)
}

/**
 * What the fixed header alone tells (checked before the body is read): a packet
 * type a client may send, with the flags MQTT 3.1.1 requires (MQTT-2.2.2-2), and
 * for a PUBLISH a QoS other than 3 (MQTT-3.3.1-4) and no DUP at QoS 0 (MQTT-3.3.1-2).
 */
export function checkHeader(header: FixedHeader): ProtocolViolation | null {
  const { type, flags } = header
  const required = REQUIRED_FLAGS[type]!
  if (required === -1) return violation('reserved_packet_type', type, 'not a packet a client may send')
  if (required >= 0) {
    return flags === required
      ? null
      : violation('reserved_flags', type, `fixed header flags 0x${flags.toString(16)}`)
  }
  const qos = (flags >> 1) & 0x03
  if (qos === 3) return violation('invalid_qos', PUBLISH, 'QoS 3')
  if (qos === 0 && flags & 0x08) return violation('reserved_flags', PUBLISH, 'DUP set on a QoS 0 message')
  return null
}

/**
 * Checks the body of one complete client-to-server packet in `buf` at `offset`
 * (whose header passed `checkHeader`) against the MQTT 3.1.1 rules whose breach
 * requires (or allows) closing the connection. Reads the variable header and
 * strings only; a PUBLISH payload is not touched. Null: the packet may go on.
 */
export function checkBody(buf: Buffer, offset: number, header: FixedHeader): ProtocolViolation | null {
  const { type } = header
  const start = offset + header.headerBytes
  const end = start + header.remaining
  switch (type) {
    case CONNECT:
      return checkConnect(buf, start, end)
    case PUBLISH:
      return checkPublish(buf, start, end, (header.flags >> 1) & 0x03)
    case SUBSCRIBE:
      return checkSubscribe(buf, start, end)
    case UNSUBSCRIBE:
      return checkUnsubscribe(buf, start, end)
    case PINGREQ:
    case DISCONNECT:
      return header.remaining === 0 ? null : violation('malformed_length', type, 'remaining length is not 0')
    default:
      // PUBACK, PUBREC, PUBREL, PUBCOMP: exactly a packet identifier, not 0.
      if (header.remaining !== 2) return violation('malformed_length', type, 'remaining length is not 2')
      if (buf.readUInt16BE(start) === 0) return violation('packet_id_zero', type, 'packet identifier 0')
      return null
  }
}

/** The string at `p` (two length bytes, then the bytes) as its end, or -1 when it runs past `end`. */
function stringEnd(buf: Buffer, p: number, end: number): number {
  if (p + 2 > end) return -1
  const stop = p + 2 + buf.readUInt16BE(p)
  return stop > end ? -1 : stop
}

function checkConnect(buf: Buffer, p: number, end: number): ProtocolViolation | null {
  const short = () => violation('malformed_length', CONNECT, 'fields run past the remaining length')
  const nameEnd = stringEnd(buf, p, end)
  if (nameEnd === -1 || nameEnd + 4 > end) return short()
  const name = buf.subarray(p + 2, nameEnd)
  const level = buf[nameEnd]!
  const isMqtt = name.equals(MQTT)
  if (!isMqtt && !name.equals(MQISDP)) return violation('invalid_protocol', CONNECT, 'unknown protocol name')
  if (level !== (isMqtt ? 4 : 3))
    return violation('unsupported_protocol_level', CONNECT, `protocol level ${level}`)
  const flags = buf[nameEnd + 1]!
  const will = (flags & 0x04) !== 0
  const willQos = (flags >> 3) & 0x03
  if (flags & 0x01) return violation('invalid_connect_flags', CONNECT, 'reserved flag bit set')
  if (!will && (willQos !== 0 || flags & 0x20))
    return violation('invalid_connect_flags', CONNECT, 'Will QoS or Will Retain without a Will')
  if (willQos === 3) return violation('invalid_qos', CONNECT, 'Will QoS 3')
  const hasUsername = (flags & 0x80) !== 0
  const hasPassword = (flags & 0x40) !== 0
  if (hasPassword && !hasUsername)
    return violation('invalid_connect_flags', CONNECT, 'password flag without username flag')
  // Payload: client id, Will topic and message, username, password; nothing after them.
  let q = nameEnd + 4
  const idEnd = stringEnd(buf, q, end)
  if (idEnd === -1) return short()
  const idFault = checkString(buf, q + 2, idEnd)
  if (idFault) return stringViolation(idFault, CONNECT, 'client id')
  q = idEnd
  if (will) {
    const topicEnd = stringEnd(buf, q, end)
    if (topicEnd === -1) return short()
    const topicFault = checkTopicName(buf, q + 2, topicEnd)
    if (topicFault) return stringViolation(topicFault, CONNECT, 'Will topic')
    const messageEnd = stringEnd(buf, topicEnd, end)
    if (messageEnd === -1) return short()
    q = messageEnd
  }
  if (hasUsername) {
    const userEnd = stringEnd(buf, q, end)
    if (userEnd === -1) return short()
    const userFault = checkString(buf, q + 2, userEnd)
    if (userFault) return stringViolation(userFault, CONNECT, 'username')
    q = userEnd
  }
  if (hasPassword) {
    // Binary data: any bytes.
    const passwordEnd = stringEnd(buf, q, end)
    if (passwordEnd === -1) return short()
    q = passwordEnd
  }
  if (q !== end) return violation('malformed_length', CONNECT, `${end - q} byte(s) after the last field`)
  return null
}

function checkPublish(buf: Buffer, p: number, end: number, qos: number): ProtocolViolation | null {
  const topicEnd = stringEnd(buf, p, end)
  if (topicEnd === -1 || (qos > 0 && topicEnd + 2 > end))
    return violation('malformed_length', PUBLISH, 'fields run past the remaining length')
  const fault = checkTopicName(buf, p + 2, topicEnd)
  if (fault) return stringViolation(fault, PUBLISH, 'topic')
  if (qos > 0 && buf.readUInt16BE(topicEnd) === 0)
    return violation('packet_id_zero', PUBLISH, 'packet identifier 0')
  return null
}

function checkSubscribe(buf: Buffer, p: number, end: number): ProtocolViolation | null {
  if (p + 2 > end) return violation('malformed_length', SUBSCRIBE, 'no packet identifier')
  if (buf.readUInt16BE(p) === 0) return violation('packet_id_zero', SUBSCRIBE, 'packet identifier 0')
  let q = p + 2
  if (q === end) return violation('no_filters', SUBSCRIBE, 'no topic filter')
  while (q < end) {
    const filterEnd = stringEnd(buf, q, end)
    if (filterEnd === -1 || filterEnd >= end)
      return violation('malformed_length', SUBSCRIBE, 'fields run past the remaining length')
    const fault = checkTopicFilter(buf, q + 2, filterEnd)
    if (fault) return stringViolation(fault, SUBSCRIBE, 'topic filter')
    // Requested QoS: 0, 1 or 2, the other six bits reserved (MQTT-3.8.3-4).
    if (buf[filterEnd]! > 2) return violation('invalid_qos', SUBSCRIBE, 'requested QoS not 0, 1 or 2')
    q = filterEnd + 1
  }
  return null
}

function checkUnsubscribe(buf: Buffer, p: number, end: number): ProtocolViolation | null {
  if (p + 2 > end) return violation('malformed_length', UNSUBSCRIBE, 'no packet identifier')
  if (buf.readUInt16BE(p) === 0) return violation('packet_id_zero', UNSUBSCRIBE, 'packet identifier 0')
  let q = p + 2
  if (q === end) return violation('no_filters', UNSUBSCRIBE, 'no topic filter')
  while (q < end) {
    const filterEnd = stringEnd(buf, q, end)
    if (filterEnd === -1)
      return violation('malformed_length', UNSUBSCRIBE, 'fields run past the remaining length')
    const fault = checkTopicFilter(buf, q + 2, filterEnd)
    if (fault) return stringViolation(fault, UNSUBSCRIBE, 'topic filter')
    q = filterEnd
  }
  return null
}
