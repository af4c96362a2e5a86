import { EMPTY, type Observable, switchMap } from 'rxjs'
import type { TopicMapping } from '../config/index.js'
import type { Logger } from '../core/logger.js'
import type { Metrics } from '../core/metrics.js'
import type { CloudProtector } from './cloud-protector.js'
import type { CloudSession } from './cloud-session.js'
import type { SendGate } from './gate.js'
import { acknowledge } from './operators/acknowledge.js'
import type { Settled } from './operators/forward.js'
import { forward } from './operators/forward.js'
import { mapTopic } from './operators/map-topic.js'
import type { UplinkQueue } from './queue/queue.js'

export interface UplinkPipelineOptions {
  queue: UplinkQueue
  sessions: Observable<CloudSession | null>
  mappings: ReadonlyArray<TopicMapping>
  gatewayId: string
  inflight: number
  /** Sends wait while it is closed (tunnel unhealthy). */
  gate?: SendGate
  protector: CloudProtector
  logger: Logger
  metrics: Metrics
}

/**
 * Uplink: for each cloud session, read the queue from its oldest unacknowledged
 * entry, map the topic, seal and sign, publish at QoS 1, and acknowledge what the cloud
 * settled. When the session ends the inner stream is dropped; the next one
 * starts again from the queue, so nothing unacknowledged is skipped.
 */
export function uplinkPipeline(options: UplinkPipelineOptions): Observable<Settled> {
  const { queue, logger, metrics } = options
  return options.sessions.pipe(
    switchMap((session) =>
      session
        ? queue
            .read()
            .pipe(
              mapTopic(options.mappings, options.gatewayId, options.protector, logger, metrics),
              forward(session, options.inflight, logger, metrics, options.gate),
              acknowledge(queue, metrics),
            )
        : EMPTY,
    ),
  )
}
