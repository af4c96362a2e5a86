import { mergeMap, type OperatorFunction } from 'rxjs'
import type { TopicMapping } from '../../config/index.js'
import type { Logger } from '../../core/logger.js'
import type { Metrics } from '../../core/metrics.js'
import type { CloudProtector } from '../cloud-protector.js'
import type { OutboundMessage } from '../cloud-session.js'
import type { QueueEntry } from '../queue/queue.js'
import { findMapping } from '../topic-map.js'

export interface Outbound {
  entry: QueueEntry
  message: OutboundMessage
}

/**
 * Local topic to cloud topic, and the envelope the cloud sees: the payload
 * (opened, HPKE-sealed for a cloud recipient, or as the device sealed it)
 * inside a COSE_Sign1 made with the gateway's key over the device, the
 * original topic, the gateway sequence number and the time of acceptance.
 * The same three facts travel in MQTT 5 user properties for routing and
 * duplicate detection without parsing. Synchronous, so queue order is kept.
 */
export function mapTopic(
  mappings: ReadonlyArray<TopicMapping>,
  gatewayId: string,
  protector: CloudProtector,
  logger: Logger,
  metrics: Metrics,
): OperatorFunction<QueueEntry, Outbound> {
  return mergeMap((entry: QueueEntry) => {
    const { message } = entry
    const mapping = findMapping(mappings, message.topic)
    // Offer() admits only mapped topics, so a miss means the mapping changed: keep the local topic visible.
    const topic = mapping ? mapping.cloud + message.topic.slice(mapping.local.length) : message.topic
    let payload: Buffer
    try {
      payload = protector.protect(entry, topic, mapping)
    } catch (err) {
      // A key the config let through but crypto refuses: the entry stays queued and is tried on the next session.
      metrics.increment('uplink_protect_failed_total')
      logger.error({ err, seq: entry.seq }, 'could not seal or sign a message for the cloud; it stays queued')
      return []
    }
    const outbound: Outbound = {
      entry,
      message: {
        topic,
        payload,
        retain: message.retain,
        userProperties: {
          'gw-seq': String(entry.seq),
          'gw-id': gatewayId,
          'gw-device': message.deviceId,
        },
      },
    }
    return [outbound]
  })
}
