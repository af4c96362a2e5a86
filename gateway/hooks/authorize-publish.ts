import type { AuthorizePublishHandler } from 'aedes'
import type { Logger } from '../../core/logger.js'
import type { SecurityEvents } from '../../core/security-events.js'
import { sessionOf, transportOf } from '../connection-context.js'
import { GatewayError } from '../errors.js'
import { isUnderPrefix } from '../topic-scope.js'
import type { UplinkSink } from '../uplink.js'

export interface AuthorizePublishDeps {
  security: SecurityEvents
  logger: Logger
  uplink: UplinkSink
}

/**
 * Runs before aedes acknowledges a PUBLISH (aedes 1.x writes the QoS 1 PUBACK
 * only after this callback). A denied topic closes the connection (MQTT-3.3.5-2);
 * an accepted message is handed to the bridge here, so the PUBACK means "held".
 */
export function createAuthorizePublish(deps: AuthorizePublishDeps): AuthorizePublishHandler {
  return (client, packet, callback) => {
    // Messages the gateway itself publishes (no client) are authorized where they are made.
    if (!client) return callback(null)
    const session = sessionOf(client)
    const bytes = packet.payload?.length ?? 0
    if (!session || !isUnderPrefix(packet.topic, session.topicPrefix)) {
      deps.security.report(
        'publish_denied',
        {
          ...(session && { device: session.device.id }),
          clientId: client.id,
          listener: transportOf(client).listener,
          topic: packet.topic,
          bytes,
        },
        `PUBLISH denied: topic outside ${session?.topicPrefix ?? 'any allowed prefix'}`,
      )
      return callback(new GatewayError('GW_ERR_PUBLISH_DENIED', 'publish not authorized'))
    }
    const qos = packet.qos === 0 ? 0 : 1
    const payload =
      typeof packet.payload === 'string' ? Buffer.from(packet.payload) : Buffer.from(packet.payload)
    const result = deps.uplink.offer({
      topic: packet.topic,
      payload,
      qos,
      retain: packet.retain,
      deviceId: session.device.id,
      clientId: client.id,
      receivedAt: Date.now(),
    })
    if (result === 'full') {
      deps.security.report(
        'uplink_queue_full',
        { device: session.device.id, clientId: client.id, topic: packet.topic, bytes, qos },
        qos === 0
          ? 'uplink queue full: QoS 0 message not forwarded to the cloud'
          : 'uplink queue full: QoS 1 message refused, connection closed so the device keeps and resends it',
      )
      if (qos === 1) return callback(new GatewayError('GW_ERR_UPLINK_FULL', 'uplink queue full'))
    }
    callback(null)
  }
}
