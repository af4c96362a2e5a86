import { Observable, type OperatorFunction } from 'rxjs'
import type { Logger } from '../../core/logger.js'
import type { Metrics } from '../../core/metrics.js'
import { CloudRefusal, type CloudSession, Unsendable } from '../cloud-session.js'
import type { SendGate } from '../gate.js'
import type { PoisonWatch } from '../poison-watch.js'
import type { Item } from './item.js'
import type { Outbound } from './map-topic.js'

export interface Settled extends Item {
  /**
   * delivered: the cloud acknowledged it; refused: the cloud refused it with a reason code;
   * unsendable: the MQTT client would not write it, or the cloud broker closed the connection
   * each time it was sent (PoisonWatch).
   */
  outcome: 'delivered' | 'refused' | 'unsendable'
  /** For refused and unsendable: why. */
  detail?: string
}

/**
 * Publishes at QoS 1 with at most `inflight` messages awaiting PUBACK, in queue
 * order, each once the gate (if any) is open. Emits each entry the cloud settled,
 * or the MQTT client refused to write. A connection failure emits nothing: the
 * entry stays queued and is sent again on the next session; `watch` is told what
 * was in flight when a session died, and a message it condemns is emitted as
 * unsendable instead of being sent (bridge/poison-watch.ts).
 *
 * Written as one operator rather than mergeMap over defer/map/catchError: a message costs
 * one callback, not an inner subscription and a promise (docs/performance.md, "Per-message
 * work of the uplink"). Messages past `inflight` wait in arrival order, as mergeMap's do.
 */
export function forward(
  session: CloudSession,
  inflight: number,
  logger: Logger,
  metrics: Metrics,
  gate?: SendGate,
  watch?: PoisonWatch,
): OperatorFunction<Outbound, Settled> {
  return (source) =>
    new Observable<Settled>((subscriber) => {
      const waiting: Outbound[] = []
      let next = 0
      let active = 0
      let sourceDone = false
      let ended = false
      // Sent on this session and not settled, with when: what PoisonWatch is told when the session dies.
      const sent = new Map<number, number>()
      // A message suspected of closing the connection goes alone, before anything else.
      let alone = watch?.alone()
      let limit = alone === undefined ? inflight : 1
      // A publish failed without an answer: the connection is going away, so nothing more is sent on it.
      let broken = false
      const endProbe = () => {
        alone = undefined
        limit = inflight
      }

      const outcomeOf = ({ entry, from, message }: Outbound, err: Error | undefined): Settled | undefined => {
        if (!err) return { entry, from, outcome: 'delivered' }
        if (err instanceof CloudRefusal) {
          logger.error(
            {
              seq: entry.seq,
              device: entry.message.deviceId,
              topic: message.topic,
              reasonCode: err.reasonCode,
            },
            'cloud broker refused a message; set aside as a dead letter (cloud_refused)',
          )
          return { entry, from, outcome: 'refused', detail: err.message }
        }
        if (err instanceof Unsendable) return { entry, from, outcome: 'unsendable', detail: err.message }
        metrics.increment('uplink_publish_interrupted_total')
        return undefined
      }

      const settle = (outbound: Outbound, err: Error | undefined) => {
        if (ended) return
        active--
        const seq = outbound.entry.seq
        const settled = outcomeOf(outbound, err)
        // Interrupted (the connection going away fails what it holds): still unacknowledged.
        if (!settled) broken = true
        else {
          sent.delete(seq)
          watch?.settled(seq)
          if (seq === alone) endProbe()
          subscriber.next(settled)
        }
        pump()
      }

      const publish = (outbound: Outbound) => {
        sent.set(outbound.entry.seq, performance.now())
        session.send(outbound.message, (err) => settle(outbound, err))
      }

      const send = (outbound: Outbound) => {
        active++
        // The suspect is not first (set aside or acknowledged meanwhile): no probe on this session.
        if (alone !== undefined && outbound.entry.seq !== alone && sent.size === 0 && active === 1) {
          watch?.settled(alone)
          endProbe()
        }
        const condemned = watch?.takeCondemned(outbound.entry.seq)
        if (condemned !== undefined) return settle(outbound, new Unsendable(condemned))
        // While the gate is closed a message waits here, holding its in-flight slot.
        if (!gate || gate.isOpen) publish(outbound)
        else
          gate.opened().then(
            () => {
              if (!ended) publish(outbound)
            },
            (err: unknown) => settle(outbound, err instanceof Error ? err : new Error(String(err))),
          )
      }

      // mqtt.js may call back at once (a client that is disconnecting fails every publish
      // there and then): such a settle does not start sends of its own, the loop below goes on.
      let pumping = false
      const pump = () => {
        if (pumping) return
        pumping = true
        try {
          while (!ended && !broken && active < limit && next < waiting.length) {
            const outbound = waiting[next]!
            waiting[next++] = undefined as unknown as Outbound
            if (next === waiting.length) {
              waiting.length = 0
              next = 0
            }
            send(outbound)
          }
        } finally {
          pumping = false
        }
        if (sourceDone && active === 0 && next >= waiting.length && !ended) subscriber.complete()
      }

      const subscription = source.subscribe({
        next(outbound) {
          waiting.push(outbound)
          pump()
        },
        error: (err: unknown) => subscriber.error(err),
        complete: () => {
          sourceDone = true
          pump()
        },
      })
      return () => {
        ended = true
        subscription.unsubscribe()
        if (session.closed && watch) {
          const unacknowledged = [...sent].map(([seq, sentAt]) => ({ seq, sentAt }))
          watch.sessionLost(unacknowledged, performance.now(), session.closedForInbound)
        }
      }
    })
}
