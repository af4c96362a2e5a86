import type { MqttClient } from 'mqtt'
import { BridgeError } from './errors.js'

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

/** One live connection to the cloud broker. It never reconnects; the link makes a new session instead. */
export class CloudSession {
  constructor(
    private readonly client: MqttClient,
    private readonly mqtt5: boolean,
  ) {}

  /** Publishes at QoS 1 and resolves when the cloud broker acknowledged it. */
  publish(message: OutboundMessage): Promise<void> {
    return new Promise((resolve, reject) => {
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
    })
  }
}
