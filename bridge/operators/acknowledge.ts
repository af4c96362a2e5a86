import { type MonoTypeOperatorFunction, tap } from 'rxjs'
import { type Metrics, series } from '../../core/metrics.js'
import type { UplinkQueue } from '../queue/queue.js'
import type { Settled } from './forward.js'

/** Removes settled entries from the queue: the only place an entry leaves it. */
export function acknowledge(queue: UplinkQueue, metrics: Metrics): MonoTypeOperatorFunction<Settled> {
  return tap(({ entry, outcome }) => {
    queue.ack(entry.seq)
    if (outcome === 'delivered') metrics.increment('uplink_delivered_total')
    else metrics.increment(series('uplink_dropped_total', { reason: 'cloud_refused' }))
  })
}
