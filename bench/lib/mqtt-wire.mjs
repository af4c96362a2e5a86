/**
 * Just enough MQTT 3.1.1 to drive a broker hard from a small process: encoders
 * for the packets a device and a subscriber send, and a streaming parser that
 * hands out whole packets. No allocations per message beyond the packet itself
 * (mqtt.js would cost the harness more CPU than the brokers it measures).
 */

export const CONNACK = 2
export const PUBLISH = 3
export const PUBACK = 4
export const SUBACK = 9
export const PINGRESP = 13

/** Bytes of the MQTT "remaining length" for `n`. */
export function remainingLengthSize(n) {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4
}

function writeRemainingLength(buf, offset, n) {
  let value = n
  do {
    let byte = value % 128
    value = Math.floor(value / 128)
    if (value > 0) byte |= 0x80
    buf[offset++] = byte
  } while (value > 0)
  return offset
}

function utf8Field(text) {
  const bytes = Buffer.from(text, 'utf8')
  const out = Buffer.allocUnsafe(2 + bytes.length)
  out.writeUInt16BE(bytes.length, 0)
  bytes.copy(out, 2)
  return out
}

function packet(firstByte, body) {
  const out = Buffer.allocUnsafe(1 + remainingLengthSize(body.length) + body.length)
  out[0] = firstByte
  body.copy(out, writeRemainingLength(out, 1, body.length))
  return out
}

/** CONNECT, MQTT 3.1.1, clean session. */
export function connectPacket({ clientId, username, password, keepalive = 60 }) {
  let flags = 0x02
  const fields = [utf8Field(clientId)]
  if (username !== undefined) {
    flags |= 0x80
    fields.push(utf8Field(username))
  }
  if (password !== undefined) {
    flags |= 0x40
    fields.push(utf8Field(password))
  }
  const header = Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, flags, keepalive >> 8, keepalive & 0xff])
  return packet(0x10, Buffer.concat([header, ...fields]))
}

export function subscribePacket(packetId, filter, qos) {
  const id = Buffer.from([packetId >> 8, packetId & 0xff])
  return packet(0x82, Buffer.concat([id, utf8Field(filter), Buffer.from([qos])]))
}

export function pubackPacket(packetId) {
  return Buffer.from([0x40, 2, packetId >> 8, packetId & 0xff])
}

export const PINGREQ_PACKET = Buffer.from([0xc0, 0])
export const DISCONNECT_PACKET = Buffer.from([0xe0, 0])

/**
 * A PUBLISH layout for one topic, QoS and payload size: `write` lays a packet
 * into `buf` at `offset` and returns where the payload starts, so the caller
 * fills it in place (several packets go to the socket in one write).
 */
export function publishLayout(topic, qos, payloadSize) {
  const topicField = utf8Field(topic)
  const remaining = topicField.length + (qos > 0 ? 2 : 0) + payloadSize
  const fixed = Buffer.allocUnsafe(1 + remainingLengthSize(remaining))
  fixed[0] = 0x30 | (qos << 1)
  writeRemainingLength(fixed, 1, remaining)
  const head = Buffer.concat([fixed, topicField])
  const size = head.length + (qos > 0 ? 2 : 0) + payloadSize
  return {
    size,
    write(buf, offset, packetId) {
      head.copy(buf, offset)
      let at = offset + head.length
      if (qos > 0) {
        buf[at++] = packetId >> 8
        buf[at++] = packetId & 0xff
      }
      return at
    },
  }
}

/** What a PUBLISH carries; `payload` is a view into the received chunk. */
export function parsePublish(flags, body) {
  const qos = (flags >> 1) & 3
  const topicLength = body.readUInt16BE(0)
  let at = 2 + topicLength
  let packetId = 0
  if (qos > 0) {
    packetId = body.readUInt16BE(at)
    at += 2
  }
  return { qos, packetId, topicStart: 2, topicLength, payload: body.subarray(at) }
}

/**
 * Splits a byte stream into packets: `onPacket(type, flags, body)`, where
 * `body` is valid only during the call.
 */
export class PacketParser {
  #pending = null

  constructor(onPacket) {
    this.onPacket = onPacket
  }

  push(chunk) {
    let buf = chunk
    if (this.#pending !== null) {
      buf = Buffer.concat([this.#pending, chunk])
      this.#pending = null
    }
    let at = 0
    while (at < buf.length) {
      if (buf.length - at < 2) break
      let length = 0
      let multiplier = 1
      let i = at + 1
      let complete = false
      for (; i < buf.length && i < at + 5; i++) {
        const byte = buf[i]
        length += (byte & 0x7f) * multiplier
        multiplier *= 128
        if ((byte & 0x80) === 0) {
          complete = true
          i++
          break
        }
      }
      if (!complete) {
        if (i >= at + 5) throw new Error('Expected an MQTT remaining length of at most 4 bytes')
        break
      }
      if (buf.length - i < length) break
      this.onPacket(buf[at] >> 4, buf[at] & 0x0f, buf.subarray(i, i + length))
      at = i + length
    }
    if (at < buf.length) this.#pending = Buffer.from(buf.subarray(at))
  }
}
