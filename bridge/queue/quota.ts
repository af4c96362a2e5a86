import type { DropReason } from './queue.js'

export interface QueueLimits {
  /** Messages held at most, to bound memory (the index keeps 10 bytes per held message). */
  maxMessages: number
  /** Bytes of disk at most, QoS 1 included. */
  quotaBytes: number
  /** QoS 0 messages are refused above this many bytes (a fraction of quotaBytes). */
  qos0Bytes: number
  /**
   * The part of maxMessages and of quotaBytes one device may hold while the queue is at least
   * half full (0 < deviceShare <= 1; 1: no per-device limit).
   */
  deviceShare: number
}

export interface Occupancy {
  /** Messages held or being written. */
  messages: number
  /** Bytes on disk or being written. */
  bytes: number
}

/** Whether `device` (what it holds now) may not add a record of `recordBytes` (see refusal, rule 1). */
export function overShare(
  recordBytes: number,
  occupancy: Occupancy,
  device: Occupancy,
  limits: QueueLimits,
): boolean {
  const { maxMessages, quotaBytes, deviceShare } = limits
  if (deviceShare >= 1) return false
  const pressure = occupancy.messages >= maxMessages / 2 || occupancy.bytes >= quotaBytes / 2
  if (!pressure) return false
  const messages = Math.max(1, Math.floor(maxMessages * deviceShare))
  return device.messages >= messages || device.bytes + recordBytes > quotaBytes * deviceShare
}

/**
 * The policy when the queue fills, applied to each append:
 * 1. While the queue holds half of maxMessages or half of quotaBytes or more, a device that
 *    already holds `deviceShare` of either (a quarter by default) is refused:
 *    `qos0_device_quota` / `qos1_device_quota`. Below half full any device may use the
 *    free space; from there on the device that holds the most is refused first, and the
 *    other half stays for the devices within their share.
 * 2. At `maxMessages` messages, any append is refused: `qos0_capacity` / `qos1_capacity`.
 * 3. A QoS 0 message that would take the queue over `qos0Bytes` (90 % of the quota by
 *    default) is refused: `qos0_quota`. The gateway still delivers it on the LAN.
 * 4. A QoS 1 message that would take the queue over `quotaBytes` is refused:
 *    `qos1_quota`. The gateway sends no PUBACK and closes the device's connection,
 *    so the device keeps the message and sends it again later.
 * So QoS 0 traffic stops first and leaves the last 10 % to QoS 1. Nothing held is
 * ever dropped to make room: space comes back only when acknowledgements empty whole
 * segments, which are then deleted, and from then on appends are accepted again.
 * `recordBytes` is the record's size, `cost` what it adds to the queue's bytes (a new
 * segment's header included). Returns undefined when the append is accepted.
 */
export function refusal(
  qos: 0 | 1,
  recordBytes: number,
  cost: number,
  occupancy: Occupancy,
  device: Occupancy,
  limits: QueueLimits,
): DropReason | undefined {
  if (overShare(recordBytes, occupancy, device, limits)) {
    return qos === 0 ? 'qos0_device_quota' : 'qos1_device_quota'
  }
  if (occupancy.messages >= limits.maxMessages) return qos === 0 ? 'qos0_capacity' : 'qos1_capacity'
  const after = occupancy.bytes + cost
  if (qos === 0) return after > limits.qos0Bytes ? 'qos0_quota' : undefined
  return after > limits.quotaBytes ? 'qos1_quota' : undefined
}
