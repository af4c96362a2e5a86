import { defer, ignoreElements, map, type Observable, retry, tap, timer } from 'rxjs'
import type { LogLimiter } from '../../core/log-limiter.js'
import type { Logger } from '../../core/logger.js'
import { type Metrics, series } from '../../core/metrics.js'
import type { DeadLetterReason } from '../dead-letter/format.js'
import type { DeadLetterStore } from '../dead-letter/store.js'
import type { UplinkQueue } from '../queue/queue.js'
import type { Item } from './item.js'

/** Holds an item aside as a dead letter instead of sending it; emits nothing. */
export type SetAside = (item: Item, reason: DeadLetterReason, detail: string) => Observable<never>

export interface SetAsideDeps {
  queue: UplinkQueue
  deadLetters: DeadLetterStore
  logger: Logger
  metrics: Metrics
  limiter: LogLimiter
}

class DeadLettersFull extends Error {}

const LOGGED_TOPIC_CHARS = 512
const RETRY_MAX_MS = 60_000

/** A topic as logged: at most 512 characters (an unsendable one may be 65,535 bytes). */
function loggedTopic(topic: string): string {
  return topic.length <= LOGGED_TOPIC_CHARS ? topic : `${topic.slice(0, LOGGED_TOPIC_CHARS)}...`
}

/**
 * The dead-letter step of the uplink: the letter is made durable first, and only
 * then does the queue forget the entry, so a crash in between leaves it in both
 * (the store takes a known gw-seq once). Each letter is counted
 * (`uplink_dead_letter_total{reason}`) and logged at warn with its gw-seq, device
 * and LAN topic, never its payload (at most 10 lines per reason each 10 s; the rest
 * are counted in the next line's `suppressed`). When the store cannot take it (full,
 * or an I/O error) the entry stays where it is, unsent, and the step tries again
 * (1 s, doubling to 60 s) for as long as the session lasts; each failure is counted
 * (`uplink_dead_letter_failed_total{reason}`) and logged at error.
 */
export function setAsideWith(deps: SetAsideDeps): SetAside {
  const { queue, deadLetters, logger, metrics, limiter } = deps
  return (item, reason, detail) => {
    const { entry } = item
    const fields = {
      seq: entry.seq,
      device: entry.message.deviceId,
      topic: loggedTopic(entry.message.topic),
      reason,
      detail,
      bytes: entry.message.payload.length,
    }
    return defer(() => deadLetters.add(entry, reason, detail)).pipe(
      map((result) => {
        if (result === 'full') throw new DeadLettersFull('the dead letters are full')
        return result
      }),
      tap(() => {
        if (item.from === 'queue') queue.ack(entry.seq)
        metrics.increment(series('uplink_dead_letter_total', { reason }))
        const take = limiter.take(`dead-letter:${reason}`)
        if (!take) return
        logger.warn(
          { ...fields, ...(take.suppressed > 0 && { suppressed: take.suppressed }) },
          `dead letter: gw-seq ${entry.seq} from ${entry.message.deviceId} set aside, not sent (${reason}): ${detail}`,
        )
      }),
      retry({
        delay: (err: unknown, attempt) => {
          const full = err instanceof DeadLettersFull
          metrics.increment(series('uplink_dead_letter_failed_total', { reason: full ? 'full' : 'io_error' }))
          const retryInMs = Math.min(RETRY_MAX_MS, 1000 * 2 ** Math.min(attempt - 1, 16))
          const take = limiter.take(`dead-letter-failed:${full ? 'full' : 'io_error'}`)
          if (take) {
            logger.error(
              {
                ...fields,
                ...(!full && { err }),
                retryInMs,
                ...(take.suppressed > 0 && { suppressed: take.suppressed }),
              },
              full
                ? `gw-seq ${entry.seq} cannot be sent and the dead letters are full: it stays queued, unsent; drop or retry dead letters (edge-gateway deadletter)`
                : `gw-seq ${entry.seq} cannot be sent and could not be set aside: it stays queued, unsent`,
            )
          }
          return timer(retryInMs)
        },
      }),
      ignoreElements(),
    )
  }
}
