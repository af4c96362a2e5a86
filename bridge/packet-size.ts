/** MQTT's largest Remaining Length (four bytes of variable byte integer). */
export const MAX_REMAINING_LENGTH = 268_435_455
/** MQTT's longest UTF-8 string, a topic included. */
export const MAX_STRING_BYTES = 65_535

function varIntBytes(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4
}

/**
 * The size of the QoS 1 PUBLISH the cloud link writes for a message (without topic
 * alias), as mqtt-packet encodes it: fixed header, topic, packet id, MQTT 5 properties
 * (user properties only) when `userProperties` is given, payload. `remaining` is the
 * Remaining Length, `total` the whole packet (what a Maximum Packet Size bounds).
 */
export function publishPacketBytes(
  topicBytes: number,
  payloadBytes: number,
  userProperties?: Readonly<Record<string, string>>,
): { remaining: number; total: number } {
  let remaining = 2 + topicBytes + 2 + payloadBytes
  if (userProperties) {
    let properties = 0
    for (const [name, value] of Object.entries(userProperties)) {
      properties += 1 + 2 + Buffer.byteLength(name) + 2 + Buffer.byteLength(value)
    }
    remaining += varIntBytes(properties) + properties
  }
  return { remaining, total: 1 + varIntBytes(remaining) + remaining }
}
