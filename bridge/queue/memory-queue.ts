import { Observable, Subject } from 'rxjs'
import { DeviceLedger, type DeviceUsage } from './device-ledger.js'
import { QueueError } from './errors.js'
import {
  noDrops,
  type QueuedMessage,
  type QueueEntry,
  type QueueStats,
  type Refused,
  type UplinkQueue,
} from './queue.js'
import { overShare, type QueueLimits } from './quota.js'
import { recordSize } from './record.js'

interface Slot {
  entry: QueueEntry
  bytes: number
  device: number
  acked: boolean
}

export interface MemoryQueueOptions {
  /** The lowest sequence number to give out (default 1). */
  firstSeq?: number
  /** The part of the capacity one device may hold once the queue is half full (default 1: no limit). */
  deviceShare?: number
}

/**
 * A bounded in-memory queue: an array of slots in sequence order with a moving
 * head. Acknowledged slots at the head are dropped; the array is compacted now
 * and then so memory follows the number held, not the number ever seen.
 * Nothing is durable: append resolves at once (its work is done before it
 * returns), and everything is lost with the process. At capacity every append
 * is refused (`qos0_capacity` / `qos1_capacity`); from half full, a device that
 * holds `deviceShare` of the capacity is refused (`qos0_device_quota` /
 * `qos1_device_quota`, see quota.ts); `bytes` counts what the messages would
 * take in a file queue (no byte quota applies).
 */
export class MemoryQueue implements UplinkQueue {
  readonly store = 'memory' as const
  private slots: Slot[] = []
  private head = 0
  private held = 0
  private bytes = 0
  private nextSeq: number
  private closed = false
  private readonly dropped = noDrops()
  private readonly appended = new Subject<QueueEntry>()
  private readonly ledger = new DeviceLedger()
  private readonly limits: QueueLimits

  constructor(
    readonly capacity: number,
    options: MemoryQueueOptions = {},
  ) {
    this.nextSeq = options.firstSeq ?? 1
    this.limits = {
      maxMessages: capacity,
      quotaBytes: Number.POSITIVE_INFINITY,
      qos0Bytes: Number.POSITIVE_INFINITY,
      deviceShare: options.deviceShare ?? 1,
    }
  }

  get size(): number {
    return this.held
  }

  append(message: QueuedMessage): Promise<QueueEntry | undefined> {
    return this.tryAppend(message).then((result) => ('refused' in result ? undefined : result))
  }

  tryAppend(message: QueuedMessage): Promise<QueueEntry | Refused> {
    if (this.closed)
      return Promise.reject(new QueueError('QUEUE_ERR_CLOSED', 'The in-memory queue is closed'))
    let bytes: number
    try {
      bytes = recordSize(message)
    } catch (err) {
      return Promise.reject(err)
    }
    const holds = this.ledger.usage(message.deviceId)
    const occupancy = { messages: this.held, bytes: this.bytes }
    const reason = overShare(bytes, occupancy, holds, this.limits)
      ? (`qos${message.qos}_device_quota` as const)
      : this.held >= this.capacity
        ? (`qos${message.qos}_capacity` as const)
        : undefined
    if (reason) {
      this.dropped[reason]++
      return Promise.resolve({ refused: reason, device: holds })
    }
    const device = this.ledger.intern(message.deviceId)
    this.ledger.add(device, bytes)
    const entry: QueueEntry = { seq: this.nextSeq++, message }
    this.slots.push({ entry, bytes, device, acked: false })
    this.held++
    this.bytes += bytes
    this.appended.next(entry)
    return Promise.resolve(entry)
  }

  usage(deviceId: string): DeviceUsage {
    return this.ledger.usage(deviceId)
  }

  devices(top: number): { holding: number; top: Array<{ device: string } & DeviceUsage> } {
    return { holding: this.ledger.devices, top: this.ledger.top(top) }
  }

  private slotOf(seq: number): Slot | undefined {
    const first = this.slots[this.head]
    if (!first) return undefined
    const slot = this.slots[this.head + (seq - first.entry.seq)]
    return slot?.entry.seq === seq ? slot : undefined
  }

  ack(seq: number): void {
    const slot = this.slotOf(seq)
    if (!slot || slot.acked) return
    slot.acked = true
    this.held--
    this.bytes -= slot.bytes
    this.ledger.remove(slot.device, slot.bytes)
    while (this.slots[this.head]?.acked) this.head++
    if (this.head > 1024 && this.head * 2 > this.slots.length) {
      this.slots = this.slots.slice(this.head)
      this.head = 0
    }
  }

  read(): Observable<QueueEntry> {
    return new Observable<QueueEntry>((subscriber) => {
      if (this.closed) {
        subscriber.complete()
        return
      }
      // Live entries appended while the backlog is being emitted are buffered, then follow in order.
      let replaying = true
      const live: QueueEntry[] = []
      const subscription = this.appended.subscribe({
        next: (entry) => {
          if (replaying) live.push(entry)
          else subscriber.next(entry)
        },
        complete: () => subscriber.complete(),
      })
      // Walk by sequence number, not array index: an ack during emission may compact the array.
      let lastSeq = -Infinity
      const first = this.slots[this.head]?.entry.seq
      if (first !== undefined) {
        for (let seq = first; seq < this.nextSeq && !subscriber.closed; seq++) {
          const slot = this.slotOf(seq)
          if (!slot || slot.acked) continue
          lastSeq = seq
          subscriber.next(slot.entry)
        }
      }
      replaying = false
      for (const entry of live) if (entry.seq > lastSeq && !subscriber.closed) subscriber.next(entry)
      return () => subscription.unsubscribe()
    })
  }

  stats(): QueueStats {
    let oldest: number | undefined
    for (let i = this.head; i < this.slots.length; i++) {
      const slot = this.slots[i]!
      if (!slot.acked) {
        oldest = slot.entry.message.receivedAt
        break
      }
    }
    return {
      depth: this.held,
      bytes: this.bytes,
      ...(oldest !== undefined && { oldestReceivedAt: oldest }),
      dropped: { ...this.dropped },
    }
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true
      this.appended.complete()
    }
    return Promise.resolve()
  }
}
