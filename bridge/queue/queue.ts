import type { Observable } from 'rxjs'
import type { UplinkMessage } from '../../gateway/uplink.js'
import type { BodyProtection } from '../envelope.js'
import type { DeviceUsage } from './device-ledger.js'

export type { DeviceUsage } from './device-ledger.js'

/** A device message as the queue holds it. */
export interface QueuedMessage extends UplinkMessage {
  /**
   * The body protection the cloud mapping gave the message when it was accepted (see
   * CloudProtector.protectionFor); the bridge never sends it with less. Absent on records
   * written before the queue kept it.
   */
  readonly protection?: BodyProtection
}

export interface QueueEntry {
  /** Gateway sequence number: strictly increasing, carried to the cloud so consumers can drop duplicates. */
  readonly seq: number
  readonly message: QueuedMessage
}

/** Why an append was refused (see quota.ts for the policy). */
export type DropReason =
  | 'qos0_quota'
  | 'qos1_quota'
  | 'qos0_capacity'
  | 'qos1_capacity'
  | 'qos0_device_quota'
  | 'qos1_device_quota'

/** What tryAppend resolves with when the queue's policy refuses the message. */
export interface Refused {
  readonly refused: DropReason
  /** What the message's device held when it was refused. */
  readonly device: DeviceUsage
}

export interface QueueStats {
  /** Messages held: appended and not yet acknowledged. */
  depth: number
  /** Bytes the queue takes against its quota: for a file queue, its files plus appends being written. */
  bytes: number
  /** When the oldest held message was received; absent when the queue is empty. */
  oldestReceivedAt?: number
  /** Appends refused since the queue was made or opened, by reason; every reason is present. */
  dropped: Record<DropReason, number>
}

/**
 * Messages accepted from devices and not yet acknowledged by the cloud. The
 * queue is the source of truth for delivery: an entry leaves only on `ack`.
 * Every implementation passes test/bridge/queue/contract.ts.
 */
export interface UplinkQueue {
  /** `disk`: survives a restart (segment files); `memory`: does not. */
  readonly store: 'disk' | 'memory'
  /** Messages held (the same as stats().depth). */
  readonly size: number
  /** Messages it holds at most (Infinity when only a byte quota bounds it). */
  readonly capacity: number
  /**
   * Appends, and resolves with the entry once it is durable (for a file queue,
   * synced to disk): the device may be acknowledged then, not before. Resolves
   * undefined when the queue refuses the message by its policy (counted in
   * stats().dropped). Rejects (QueueError) when the message cannot be stored:
   * after close(), a field too long, or an I/O failure; the message is not held.
   * Entries are numbered and emitted in the order of the append calls.
   */
  append(message: QueuedMessage): Promise<QueueEntry | undefined>
  /** The same as append, but resolves with why (and what the device held) when its policy refuses the message. */
  tryAppend(message: QueuedMessage): Promise<QueueEntry | Refused>
  /** What `deviceId` holds: messages appended (or being written) and not yet acknowledged, and their bytes. */
  usage(deviceId: string): DeviceUsage
  /** How many devices hold messages now, and the `top` that hold the most, most first (for status). */
  devices(top: number): { holding: number; top: Array<{ device: string } & DeviceUsage> }
  /**
   * Removes an entry the cloud acknowledged. Unknown or repeated seqs are
   * ignored. It may be made durable lazily: after a crash an acknowledged entry
   * may come back, and is sent again with its seq.
   */
  ack(seq: number): void
  /**
   * On subscribe: every entry not yet acknowledged, oldest first, then each new
   * entry once its append is durable. Resubscribing starts again from the
   * oldest. Emission may be asynchronous; a file queue reads its backlog from
   * disk a chunk at a time and pauses while too many emitted entries are not
   * yet acknowledged. Completes on close().
   */
  read(): Observable<QueueEntry>
  stats(): QueueStats
  /** Waits for appends under way, persists acknowledgements, releases files. Idempotent. */
  close(): Promise<void>
}

/** A `dropped` record with every reason at zero. */
export function noDrops(): Record<DropReason, number> {
  return {
    qos0_quota: 0,
    qos1_quota: 0,
    qos0_capacity: 0,
    qos1_capacity: 0,
    qos0_device_quota: 0,
    qos1_device_quota: 0,
  }
}
