import { EMPTY, map, merge, type Observable, switchMap } from 'rxjs'
import type { TopicMapping } from '../config/index.js'
import { LogLimiter } from '../core/log-limiter.js'
import type { Logger } from '../core/logger.js'
import type { Metrics } from '../core/metrics.js'
import type { CloudProtector } from './cloud-protector.js'
import type { CloudSession } from './cloud-session.js'
import type { DeadLetterStore } from './dead-letter/store.js'
import type { SendGate } from './gate.js'
import { acknowledge } from './operators/acknowledge.js'
import type { Settled } from './operators/forward.js'
import { forward } from './operators/forward.js'
import type { Item } from './operators/item.js'
import { mapTopic } from './operators/map-topic.js'
import { setAsideWith } from './operators/set-aside.js'
import { PoisonWatch } from './poison-watch.js'
import type { UplinkQueue } from './queue/queue.js'

export interface UplinkPipelineOptions {
  queue: UplinkQueue
  /** Where messages that must not be sent as they are go, and where retried ones come from. */
  deadLetters: DeadLetterStore
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
 * entry (and the dead letters an operator retries), map the topic, seal and sign,
 * publish at QoS 1, and acknowledge what the cloud settled; set aside what must
 * not go out as it is. When the session ends the inner stream is dropped; the next
 * one starts again from the queue, so nothing unacknowledged is skipped. An error
 * (a queue that cannot be read) ends the stream: the bridge restarts it.
 */
export function uplinkPipeline(options: UplinkPipelineOptions): Observable<Settled> {
  const { queue, deadLetters, logger, metrics } = options
  const setAside = setAsideWith({ queue, deadLetters, logger, metrics, limiter: new LogLimiter() })
  // Across sessions: a message the cloud broker closes the connection on is set aside.
  const watch = new PoisonWatch()
  return options.sessions.pipe(
    switchMap((session) =>
      session
        ? merge(
            queue.read().pipe(map((entry): Item => ({ entry, from: 'queue' }))),
            deadLetters.retries().pipe(map((entry): Item => ({ entry, from: 'dead-letter' }))),
          ).pipe(
            mapTopic(
              options.mappings,
              options.gatewayId,
              options.protector,
              session,
              setAside,
              logger,
              metrics,
            ),
            forward(session, options.inflight, logger, metrics, options.gate, watch),
            acknowledge(queue, deadLetters, setAside, metrics),
          )
        : EMPTY,
    ),
  )
}
