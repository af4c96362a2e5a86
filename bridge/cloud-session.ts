import type { MqttClient } from 'mqtt'
import { BridgeError } from './errors.js'
import { cloudTopicProblem, packetProblem } from './sendable.js'

export interface OutboundMessage {
  topic: string
  payload: Buffer
  retain: boolean
  userProperties: Record<string, string>
}

/** Raised when the cloud broker answered a PUBLISH with a failure reason code (MQTT 5). */
export class CloudRefusal extends BridgeError {
  constructor(readonly reasonCode: number) {
    super(
      'BRIDGE_ERR_CLOUD_REJECTED',
      `cloud broker refused the message (reason code 0x${reasonCode.toString(16)})`,
    )
  }
}

/** Raised when the MQTT client refused to write a message at all (it can never be sent as it is). */
export class Unsendable extends BridgeError {
  constructor(detail: string, options?: { cause?: unknown }) {
    super('BRIDGE_ERR_UNSENDABLE', detail, options)
  }
}

/** One live connection to the cloud broker. It never reconnects; the link makes a new session instead. */
export class CloudSession {
  constructor(
    private readonly client: MqttClient,
    private readonly mqtt5: boolean,
    /** The cloud broker's Maximum Packet Size from its CONNACK (MQTT 5), if it gave one. */
    readonly maxPacketBytes?: number,
    /**
     * Set when the broker takes no retained messages: each message goes up without the retain
     * flag, and this runs for each one that had it.
     */
    private readonly retainCleared?: () => void,
  ) {}

  /** The connection is gone (the link makes a new session). */
  get closed(): boolean {
    return !this.client.connected
  }

  /** The gateway closed this connection for what the broker sent (an oversize packet), not for what it sent. */
  closedForInbound = false

  /**
   * Why `message` cannot go over this connection as it is, or undefined when it can:
   * a cloud topic over MQTT's 65,535 bytes (or empty, or with a wildcard or U+0000), a
   * PUBLISH over MQTT's largest packet or over the broker's Maximum Packet Size. Such a
   * message would wedge the link: the writer refuses it, or the broker drops the
   * connection, and the queue sends it first again.
   */
  unsendable(message: OutboundMessage): string | undefined {
    return (
      cloudTopicProblem(message.topic) ??
      packetProblem(
        Buffer.byteLength(message.topic),
        message.payload.length,
        this.mqtt5 ? message.userProperties : undefined,
        this.maxPacketBytes,
      )
    )
  }

  /** Publishes at QoS 1 and resolves when the cloud broker acknowledged it. */
  publish(message: OutboundMessage): Promise<void> {
    return new Promise((resolve, reject) => this.send(message, (err) => (err ? reject(err) : resolve())))
  }

  /**
   * `publish` without a promise, for the uplink's per-message path: `done` runs once, with
   * nothing when the cloud broker acknowledged the message, with a CloudRefusal when it refused
   * it, an Unsendable when the MQTT client would not write it, or the client's error.
   */
  send(message: OutboundMessage, done: (err?: Error) => void): void {
    let called = false
    // Once: mqtt.js may still call back for a message whose write threw.
    const settle = (err?: Error) => {
      if (called) return
      called = true
      done(err)
    }
    let retain = message.retain
    if (retain && this.retainCleared) {
      retain = false
      this.retainCleared()
    }
    try {
      this.client.publish(
        message.topic,
        message.payload,
        this.mqtt5
          ? { qos: 1, retain, properties: { userProperties: message.userProperties } }
          : { qos: 1, retain },
        (err, packet) => {
          if (err) {
            const code = (err as { code?: unknown }).code
            return settle(typeof code === 'number' && code >= 0x80 ? new CloudRefusal(code) : err)
          }
          const reasonCode = (packet as { reasonCode?: number } | undefined)?.reasonCode
          if (reasonCode !== undefined && reasonCode >= 0x80) return settle(new CloudRefusal(reasonCode))
          settle()
        },
      )
    } catch (err) {
      // A throw from `done` itself (it ran inside publish) is not the client's: it goes on up.
      if (called) throw err
      // mqtt-packet throws from inside its writer for a packet it cannot encode.
      settle(new Unsendable(`the MQTT client refused to write it: ${(err as Error).message}`, { cause: err }))
    }
  }
}
