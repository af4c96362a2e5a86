/** A device message accepted by the LAN broker, handed to the bridge before the device is acknowledged. */
export interface UplinkMessage {
  topic: string
  payload: Buffer
  qos: 0 | 1
  retain: boolean
  deviceId: string
  clientId: string
  receivedAt: number
}

/**
 * Why the bridge refused a message it would otherwise hold (`detail` says it for the log):
 * - device_quota: the device holds more than its share of the queue while the queue is at
 *   least half full (cloud.queue.deviceShare); the caller refuses it (QoS 1) or drops it (QoS 0).
 * - unsendable: the cloud could never take it as mapped (its cloud topic, or a PUBLISH over
 *   the cloud broker's Maximum Packet Size); the caller treats it as a denied PUBLISH.
 */
export interface OfferRefusal {
  refused: 'device_quota' | 'unsendable'
  detail: string
}

/**
 * The seam between the LAN broker and the bridge. `offer` runs in the publish
 * authorization step, so a QoS 1 PUBACK is sent only after it returned 'accepted'.
 * - accepted: the bridge holds it and will deliver it.
 * - ignored: no mapping sends this topic to the cloud; local delivery only.
 * - full: the bridge cannot hold more; the caller refuses (QoS 1) or drops it (QoS 0).
 * - an OfferRefusal: see there.
 * `offer` rejects when the message cannot be held at all: QUEUE_ERR_IO (the disk failed)
 * or BRIDGE_ERR_FORWARDING_STOPPED (forwarding was given up); the caller refuses it too.
 */
export type OfferResult = 'accepted' | 'ignored' | 'full' | OfferRefusal

export interface UplinkSink {
  /** Resolves when the message is held durably (or refused); the PUBACK waits for it. */
  offer(message: UplinkMessage): OfferResult | Promise<OfferResult>
}
