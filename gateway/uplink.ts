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
 * The seam between the LAN broker and the bridge. `offer` runs in the publish
 * authorization step, so a QoS 1 PUBACK is sent only after it returned 'accepted'.
 * - accepted: the bridge holds it and will deliver it.
 * - ignored: no mapping sends this topic to the cloud; local delivery only.
 * - full: the bridge cannot hold more; the caller refuses (QoS 1) or drops it (QoS 0).
 * `offer` rejects when the message cannot be held at all: QUEUE_ERR_IO (the disk failed)
 * or BRIDGE_ERR_FORWARDING_STOPPED (forwarding was given up); the caller refuses it too.
 */
export type OfferResult = 'accepted' | 'ignored' | 'full'

export interface UplinkSink {
  /** Resolves when the message is held durably (or refused); the PUBACK waits for it. */
  offer(message: UplinkMessage): OfferResult | Promise<OfferResult>
}
