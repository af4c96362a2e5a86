import { catchError, defer, EMPTY, map, mergeMap, type OperatorFunction } from 'rxjs'
import type { Logger } from '../../core/logger.js'
import type { Metrics } from '../../core/metrics.js'
import { CloudRefusal, type CloudSession, Unsendable } from '../cloud-session.js'
import type { SendGate } from '../gate.js'
import type { Item } from './item.js'
import type { Outbound } from './map-topic.js'

export interface Settled extends Item {
  /** delivered: the cloud acknowledged it; refused: the cloud refused it; unsendable: the MQTT client would not write it. */
  outcome: 'delivered' | 'refused' | 'unsendable'
  /** For unsendable: why. */
  detail?: string
}

/**
 * Publishes at QoS 1 with at most `inflight` messages awaiting PUBACK, in queue
 * order, each once the gate (if any) is open. Emits each entry the cloud settled,
 * or the MQTT client refused to write. A connection failure emits nothing: the
 * entry stays queued and is sent again on the next session.
 */
export function forward(
  session: CloudSession,
  inflight: number,
  logger: Logger,
  metrics: Metrics,
  gate?: SendGate,
): OperatorFunction<Outbound, Settled> {
  return mergeMap(
    ({ entry, from, message }) =>
      // defer: even a synchronous throw becomes an error of this message's stream, never of the pipeline.
      // While the gate is closed a message waits here, holding its in-flight slot.
      defer(() =>
        !gate || gate.isOpen ? session.publish(message) : gate.opened().then(() => session.publish(message)),
      ).pipe(
        map((): Settled => ({ entry, from, outcome: 'delivered' })),
        catchError((err: unknown) => {
          if (err instanceof CloudRefusal) {
            logger.error(
              {
                seq: entry.seq,
                device: entry.message.deviceId,
                topic: message.topic,
                reasonCode: err.reasonCode,
              },
              'cloud broker refused a message; dropped and counted',
            )
            return [{ entry, from, outcome: 'refused' } as Settled]
          }
          if (err instanceof Unsendable)
            return [{ entry, from, outcome: 'unsendable', detail: err.message } as Settled]
          metrics.increment('uplink_publish_interrupted_total')
          return EMPTY
        }),
      ),
    inflight,
  )
}
