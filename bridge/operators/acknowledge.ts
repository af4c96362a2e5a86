import type { ObservableInput, OperatorFunction } from 'rxjs'
import type { Metrics } from '../../core/metrics.js'
import type { DeadLetterStore } from '../dead-letter/store.js'
import type { UplinkQueue } from '../queue/queue.js'
import { flatMapNow } from './flat-map-now.js'
import type { Settled } from './forward.js'
import type { SetAside } from './set-aside.js'

/**
 * Removes settled entries from where they are held: the only place an entry leaves
 * the queue (besides being set aside) and a retried dead letter leaves the dead
 * letters. An entry the MQTT client would not write is set aside as `unsendable`,
 * one the cloud broker refused with a reason code as `cloud_refused`: acknowledged to
 * its device, it is kept, never dropped. A queue entry delivered while a dead letter
 * of the same gw-seq is held (a crash between setting it aside and the queue's
 * acknowledgement, then a config fix) resolves that letter too.
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
    if (outcome === 'refused')
      return setAside(settled, 'cloud_refused', settled.detail ?? 'refused by the cloud broker')
    if (from === 'queue') {
      queue.ack(entry.seq)
      if (deadLetters.has(entry.seq)) void deadLetters.settle(entry.seq)
    } else void deadLetters.settle(entry.seq)
    metrics.increment('uplink_delivered_total')
    return [settled]
  })
}
