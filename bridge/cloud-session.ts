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
  ) {}

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
    return new Promise((resolve, reject) => {
      try {
        this.client.publish(
          message.topic,
          message.payload,
          {
            qos: 1,
            retain: message.retain,
            ...(this.mqtt5 && { properties: { userProperties: message.userProperties } }),
          },
          (err, packet) => {
            if (err) {
              const code = (err as { code?: unknown }).code
              return reject(typeof code === 'number' && code >= 0x80 ? new CloudRefusal(code) : err)
            }
            const reasonCode = (packet as { reasonCode?: number } | undefined)?.reasonCode
            if (reasonCode !== undefined && reasonCode >= 0x80) return reject(new CloudRefusal(reasonCode))
            resolve()
          },
        )
      } catch (err) {
        // mqtt-packet throws from inside its writer for a packet it cannot encode.
        reject(
          new Unsendable(`the MQTT client refused to write it: ${(err as Error).message}`, { cause: err }),
        )
      }
    })
  }
}
