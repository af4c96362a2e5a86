import type { DropReason } from './queue.js'

export interface QueueLimits {
  /** Messages held at most, to bound memory (the index keeps a few bytes per held message). */
  maxMessages: number
  /** Bytes of disk at most, QoS 1 included. */
  quotaBytes: number
  /** QoS 0 messages are refused above this many bytes (a fraction of quotaBytes). */
  qos0Bytes: number
}

export interface Occupancy {
  /** Messages held or being written. */
  messages: number
  /** Bytes on disk or being written. */
  bytes: number
}

/**
 * The policy when the queue is full, applied to each append:
 * 1. At `maxMessages` messages, any append is refused: `qos0_capacity` / `qos1_capacity`.
 * 2. A QoS 0 message that would take the queue over `qos0Bytes` (90 % of the quota by
 *    default) is refused: `qos0_quota`. The gateway still delivers it on the LAN.
 * 3. A QoS 1 message that would take the queue over `quotaBytes` is refused:
 *    `qos1_quota`. The gateway sends no PUBACK and closes the device's connection,
 *    so the device keeps the message and sends it again later.
 * So QoS 0 traffic stops first and leaves the last 10 % to QoS 1. Nothing held is
 * ever dropped to make room: space comes back only when acknowledgements empty whole
 * segments, which are then deleted, and from then on appends are accepted again.
 * Returns undefined when the append is accepted.
 */
export function refusal(
  qos: 0 | 1,
  recordBytes: number,
  occupancy: Occupancy,
  limits: QueueLimits,
): DropReason | undefined {
  if (occupancy.messages >= limits.maxMessages) return qos === 0 ? 'qos0_capacity' : 'qos1_capacity'
  const after = occupancy.bytes + recordBytes
  if (qos === 0) return after > limits.qos0Bytes ? 'qos0_quota' : undefined
  return after > limits.quotaBytes ? 'qos1_quota' : undefined
}
