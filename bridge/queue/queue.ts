import type { Observable } from 'rxjs'
import type { UplinkMessage } from '../../gateway/uplink.js'

export interface QueueEntry {
  /** Gateway sequence number: strictly increasing, carried to the cloud so consumers can drop duplicates. */
  readonly seq: number
  readonly message: UplinkMessage
}

/**
 * Messages accepted from devices and not yet acknowledged by the cloud. The
 * queue is the source of truth for delivery: an entry leaves only on `ack`.
 * Every implementation passes test/bridge/queue/contract.ts.
 */
export interface UplinkQueue {
  readonly size: number
  readonly capacity: number
  /** Appends, or returns undefined when the queue is full (the caller counts and reports it). */
  append(message: UplinkMessage): QueueEntry | undefined
  /** Removes an entry the cloud acknowledged. Unknown or repeated seqs are ignored. */
  ack(seq: number): void
  /**
   * On subscribe: every entry not yet acknowledged, oldest first, then each new
   * entry as it is appended. Resubscribing starts again from the oldest.
   */
  read(): Observable<QueueEntry>
  /** When the oldest held message was received, or undefined when empty. */
  oldestReceivedAt(): number | undefined
}
