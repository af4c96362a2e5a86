import { catchError, defer, EMPTY, map, mergeMap, type OperatorFunction } from 'rxjs'
import type { Logger } from '../../core/logger.js'
import type { Metrics } from '../../core/metrics.js'
import { CloudRefusal, type CloudSession } from '../cloud-session.js'
import type { SendGate } from '../gate.js'
import type { QueueEntry } from '../queue/queue.js'
import type { Outbound } from './map-topic.js'

export interface Settled {
  entry: QueueEntry
  outcome: 'delivered' | 'refused'
}

/**
 * Publishes at QoS 1 with at most `inflight` messages awaiting PUBACK, in queue
 * order, each once the gate (if any) is open. Emits each entry the cloud settled. A connection failure emits
 * nothing: the entry stays queued and is sent again on the next session.
 */
export function forward(
  session: CloudSession,
  inflight: number,
  logger: Logger,
  metrics: Metrics,
  gate?: SendGate,
): OperatorFunction<Outbound, Settled> {
  return mergeMap(
    ({ entry, message }) =>
      // defer: even a synchronous throw becomes an error of this message's stream, never of the pipeline.
      // While the gate is closed a message waits here, holding its in-flight slot.
      defer(() =>
        !gate || gate.isOpen ? session.publish(message) : gate.opened().then(() => session.publish(message)),
      ).pipe(
        map((): Settled => ({ entry, outcome: 'delivered' })),
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
            return [{ entry, outcome: 'refused' } as Settled]
          }
          metrics.increment('uplink_publish_interrupted_total')
          return EMPTY
        }),
      ),
    inflight,
  )
}
