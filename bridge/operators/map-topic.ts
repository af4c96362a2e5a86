import { map, type OperatorFunction } from 'rxjs'
import type { TopicMapping } from '../../config/index.js'
import type { OutboundMessage } from '../cloud-session.js'
import type { QueueEntry } from '../queue/queue.js'
import { mapTopic as mapLocalTopic } from '../topic-map.js'

export interface Outbound {
  entry: QueueEntry
  message: OutboundMessage
}

/**
 * Local topic to cloud topic, and the envelope the cloud sees: the payload as
 * the device sent it, with the gateway sequence number, the device and the
 * gateway in MQTT 5 user properties.
 */
export function mapTopic(
  mappings: ReadonlyArray<TopicMapping>,
  gatewayId: string,
): OperatorFunction<QueueEntry, Outbound> {
  return map((entry) => {
    const { message } = entry
    // Offer() admits only mapped topics, so a miss means the mapping changed: keep the local topic visible.
    const topic = mapLocalTopic(mappings, message.topic) ?? message.topic
    return {
      entry,
      message: {
        topic,
        payload: message.payload,
        retain: message.retain,
        userProperties: {
          'gw-seq': String(entry.seq),
          'gw-id': gatewayId,
          'gw-device': message.deviceId,
        },
      },
    }
  })
}
