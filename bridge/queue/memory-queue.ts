import { Observable, Subject } from 'rxjs'
import type { UplinkMessage } from '../../gateway/uplink.js'
import type { QueueEntry, UplinkQueue } from './queue.js'

interface Slot {
  entry: QueueEntry
  acked: boolean
}

/**
 * A bounded in-memory queue: an array of slots in sequence order with a moving
 * head. Acknowledged slots at the head are dropped; the array is compacted now
 * and then so memory follows the number held, not the number ever seen.
 */
export class MemoryQueue implements UplinkQueue {
  private slots: Slot[] = []
  private head = 0
  private held = 0
  private nextSeq: number
  private readonly appended = new Subject<QueueEntry>()

  constructor(
    readonly capacity: number,
    firstSeq = 1,
  ) {
    this.nextSeq = firstSeq
  }

  get size(): number {
    return this.held
  }

  append(message: UplinkMessage): QueueEntry | undefined {
    if (this.held >= this.capacity) return undefined
    const entry: QueueEntry = { seq: this.nextSeq++, message }
    this.slots.push({ entry, acked: false })
    this.held++
    this.appended.next(entry)
    return entry
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
    while (this.slots[this.head]?.acked) this.head++
    if (this.head > 1024 && this.head * 2 > this.slots.length) {
      this.slots = this.slots.slice(this.head)
      this.head = 0
    }
  }

  read(): Observable<QueueEntry> {
    return new Observable<QueueEntry>((subscriber) => {
      // Live entries appended while the backlog is being emitted are buffered, then follow in order.
      let replaying = true
      const live: QueueEntry[] = []
      const subscription = this.appended.subscribe((entry) => {
        if (replaying) live.push(entry)
        else subscriber.next(entry)
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

  oldestReceivedAt(): number | undefined {
    for (let i = this.head; i < this.slots.length; i++) {
      const slot = this.slots[i]!
      if (!slot.acked) return slot.entry.message.receivedAt
    }
    return undefined
  }
}
