import type { ObservableInput, OperatorFunction } from 'rxjs'
import type { TopicMapping } from '../../config/index.js'
import type { Logger } from '../../core/logger.js'
import type { Metrics } from '../../core/metrics.js'
import type { CloudProtector } from '../cloud-protector.js'
import type { CloudSession, OutboundMessage } from '../cloud-session.js'
import { describeProtection, keepsProtection } from '../protection-rule.js'
import { findMapping } from '../topic-map.js'
import { flatMapNow } from './flat-map-now.js'
import type { Item } from './item.js'
import type { SetAside } from './set-aside.js'

export interface Outbound extends Item {
  message: OutboundMessage
}

/**
 * Local topic to cloud topic, and the envelope the cloud sees: the payload
 * (opened, HPKE-sealed for a cloud recipient, or as the device sealed it)
 * inside a COSE_Sign1 made with the gateway's key over the device, the
 * original topic, the gateway sequence number and the time of acceptance.
 * The same three facts travel in MQTT 5 user properties for routing and
 * duplicate detection without parsing. Synchronous for what it sends, so queue
 * order is kept.
 *
 * What must not go out as it is, is set aside as a dead letter (never sent on its
 * LAN topic, never with less protection than it was accepted under):
 * - no mapping covers its topic any more (`no_mapping`);
 * - the mapping that covers it now gives less protection, or another kind (`protection_changed`);
 * - this cloud session cannot carry it (`unsendable`: topic or packet too large).
 */
export function mapTopic(
  mappings: ReadonlyArray<TopicMapping>,
  gatewayId: string,
  protector: CloudProtector,
  session: CloudSession,
  setAside: SetAside,
  logger: Logger,
  metrics: Metrics,
): OperatorFunction<Item, Outbound> {
  return flatMapNow((item: Item): ObservableInput<Outbound> => {
    const { entry } = item
    const { message } = entry
    const mapping = findMapping(mappings, message.topic)
    if (!mapping) return setAside(item, 'no_mapping', 'no cloud.topics mapping covers its topic')
    const protection = protector.protectionFor(mapping)
    if (message.protection !== undefined && !keepsProtection(message.protection, protection)) {
      return setAside(
        item,
        'protection_changed',
        `accepted as ${describeProtection(message.protection)}; the mapping that covers it now gives ${describeProtection(protection)}`,
      )
    }
    const topic = mapping.cloud + message.topic.slice(mapping.local.length)
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
      ...item,
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
    const unsendable = session.unsendable(outbound.message)
    if (unsendable) return setAside(item, 'unsendable', unsendable)
    return [outbound]
  })
}
