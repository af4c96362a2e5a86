import { concatMap, from, map, type Observable, type OperatorFunction, of } from 'rxjs'
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
 * duplicate detection without parsing. Order is kept: work that needs a
 * promise (HPKE) starts at once and is emitted in queue order.
 */
export function mapTopic(
  mappings: ReadonlyArray<TopicMapping>,
  gatewayId: string,
  protector: CloudProtector,
  logger: Logger,
  metrics: Metrics,
): OperatorFunction<QueueEntry, Outbound> {
  const toOutbound = (entry: QueueEntry): Outbound | Promise<Outbound> => {
    const { message } = entry
    const mapping = findMapping(mappings, message.topic)
    // Offer() admits only mapped topics, so a miss means the mapping changed: keep the local topic visible.
    const topic = mapping ? mapping.cloud + message.topic.slice(mapping.local.length) : message.topic
    const wrap = (payload: Buffer): Outbound => ({
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
    })
    const protectedPayload = protector.protect(entry, topic, mapping)
    return protectedPayload instanceof Promise ? protectedPayload.then(wrap) : wrap(protectedPayload)
  }
  return (source: Observable<QueueEntry>) =>
    source.pipe(
      map((entry) => {
        try {
          return toOutbound(entry)
        } catch (err) {
          return Promise.reject(err)
        }
      }),
      concatMap((outbound) =>
        outbound instanceof Promise
          ? from(
              outbound.catch((err: unknown) => {
                metrics.increment('uplink_protect_failed_total')
                logger.error({ err }, 'could not seal or sign a message for the cloud; it stays queued')
                return undefined
              }),
            ).pipe(concatMap((o) => (o ? of(o) : [])))
          : of(outbound),
      ),
    )
}
