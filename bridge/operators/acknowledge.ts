import type { ObservableInput, OperatorFunction } from 'rxjs'
import { type Metrics, series } from '../../core/metrics.js'
import type { DeadLetterStore } from '../dead-letter/store.js'
import type { UplinkQueue } from '../queue/queue.js'
import { flatMapNow } from './flat-map-now.js'
import type { Settled } from './forward.js'
import type { SetAside } from './set-aside.js'

/**
 * Removes settled entries from where they are held: the only place an entry leaves
 * the queue (besides being set aside) and a retried dead letter leaves the dead
 * letters. An entry the MQTT client would not write is set aside as `unsendable`.
 * A queue entry delivered while a dead letter of the same gw-seq is held (a crash
 * between setting it aside and the queue's acknowledgement, then a config fix)
 * resolves that letter too.
 */
export function acknowledge(
  queue: UplinkQueue,
  deadLetters: DeadLetterStore,
  setAside: SetAside,
  metrics: Metrics,
): OperatorFunction<Settled, Settled> {
  return flatMapNow((settled): ObservableInput<Settled> => {
    const { entry, from, outcome } = settled
    if (outcome === 'unsendable')
      return setAside(settled, 'unsendable', settled.detail ?? 'refused by the MQTT client')
    if (from === 'queue') {
      queue.ack(entry.seq)
      if (outcome === 'delivered' && deadLetters.has(entry.seq))
        void deadLetters.settle(entry.seq, 'delivered')
    } else void deadLetters.settle(entry.seq, outcome)
    if (outcome === 'delivered') metrics.increment('uplink_delivered_total')
    else metrics.increment(series('uplink_dropped_total', { reason: 'cloud_refused' }))
    return [settled]
  })
}
