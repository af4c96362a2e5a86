import { firstValueFrom, type Subscription, take, toArray } from 'rxjs'
import { afterEach, describe, expect, it } from 'vitest'
import type { QueueEntry, UplinkQueue } from '../../../bridge/queue/queue.js'
import type { UplinkMessage } from '../../../gateway/uplink.js'

/** A device message numbered `n`: topic, payload and receivedAt all follow from it. */
export function message(n: number): UplinkMessage {
  return {
    topic: `devices/dev-${n % 3}/m/${n}`,
    payload: Buffer.from(`payload ${n}`),
    qos: 1,
    retain: n % 2 === 0,
    deviceId: `dev-${n % 3}`,
    clientId: `client-${n % 3}`,
    receivedAt: 1_700_000_000_000 + n,
  }
}

/** Appends messages `from`..`to` and returns their entries, failing if the queue refused one. */
function fill(queue: UplinkQueue, from: number, to: number): QueueEntry[] {
  const entries: QueueEntry[] = []
  for (let n = from; n <= to; n++) {
    const entry = queue.append(message(n))
    if (!entry) throw new Error(`queue refused message ${n} at size ${queue.size}`)
    entries.push(entry)
  }
  return entries
}

/** Every entry read() replays right now (the backlog is emitted synchronously on subscribe). */
function backlog(queue: UplinkQueue): QueueEntry[] {
  const seen: QueueEntry[] = []
  queue
    .read()
    .subscribe((entry) => seen.push(entry))
    .unsubscribe()
  return seen
}

/** The message numbers of entries, from their receivedAt. */
const numbers = (entries: ReadonlyArray<QueueEntry>) =>
  entries.map((e) => e.message.receivedAt - 1_700_000_000_000)

/**
 * The behaviour every UplinkQueue must have. `make(capacity)` returns a fresh,
 * empty queue.
 */
export function uplinkQueueContract(name: string, make: (capacity: number) => UplinkQueue): void {
  describe(`UplinkQueue contract: ${name}`, () => {
    const subscriptions: Subscription[] = []
    afterEach(() => {
      for (const s of subscriptions.splice(0)) s.unsubscribe()
    })

    it('starts empty, with the capacity it was made with', () => {
      const queue = make(5)
      expect(queue.size).toBe(0)
      expect(queue.capacity).toBe(5)
      expect(queue.oldestReceivedAt()).toBeUndefined()
      expect(backlog(queue)).toEqual([])
    })

    it('numbers entries with strictly increasing integer seqs and keeps the message as given', () => {
      const queue = make(100)
      const entries = fill(queue, 1, 50)
      for (const [i, entry] of entries.entries()) {
        expect(Number.isSafeInteger(entry.seq)).toBe(true)
        if (i > 0) expect(entry.seq).toBeGreaterThan(entries[i - 1]!.seq)
        expect(entry.message).toEqual(message(i + 1))
      }
      expect(queue.size).toBe(50)
    })

    it('keeps seqs increasing across acks, and never reuses one', () => {
      const queue = make(2)
      const seqs: number[] = []
      for (let n = 1; n <= 20; n++) {
        const entry = queue.append(message(n))!
        seqs.push(entry.seq)
        queue.ack(entry.seq)
      }
      expect(new Set(seqs).size).toBe(20)
      expect([...seqs].sort((a, b) => a - b)).toEqual(seqs)
    })

    it('refuses an append at capacity and keeps its size', () => {
      const queue = make(3)
      const entries = fill(queue, 1, 3)
      expect(queue.append(message(4))).toBeUndefined()
      expect(queue.append(message(5))).toBeUndefined()
      expect(queue.size).toBe(3)
      expect(backlog(queue)).toEqual(entries)
    })

    it('frees one slot per ack', () => {
      const queue = make(3)
      const [first, second] = fill(queue, 1, 3)
      queue.ack(second!.seq)
      expect(queue.size).toBe(2)
      const fourth = queue.append(message(4))
      expect(fourth).toBeDefined()
      expect(fourth!.seq).toBeGreaterThan(first!.seq)
      expect(queue.size).toBe(3)
      expect(queue.append(message(5))).toBeUndefined()
      expect(numbers(backlog(queue))).toEqual([1, 3, 4])
    })

    it('ignores the ack of an unknown seq', () => {
      const queue = make(10)
      const entries = fill(queue, 1, 3)
      const last = entries.at(-1)!.seq
      for (const seq of [last + 1, last + 1000, entries[0]!.seq - 1, -1, 0.5, Number.NaN, Infinity]) {
        queue.ack(seq)
      }
      expect(queue.size).toBe(3)
      expect(backlog(queue)).toEqual(entries)
    })

    it('ignores a repeated ack, so it cannot free a second slot', () => {
      const queue = make(2)
      const [first] = fill(queue, 1, 2)
      queue.ack(first!.seq)
      queue.ack(first!.seq)
      queue.ack(first!.seq)
      expect(queue.size).toBe(1)
      expect(queue.append(message(3))).toBeDefined()
      expect(queue.append(message(4))).toBeUndefined()
      expect(numbers(backlog(queue))).toEqual([2, 3])
    })

    it('ignores acks on an empty queue', () => {
      const queue = make(2)
      queue.ack(1)
      queue.ack(0)
      expect(queue.size).toBe(0)
      const [a, b] = fill(queue, 1, 2)
      queue.ack(a!.seq)
      queue.ack(b!.seq)
      queue.ack(b!.seq)
      expect(queue.size).toBe(0)
      expect(backlog(queue)).toEqual([])
    })

    it('replays every unacknowledged entry, oldest first, then emits appends live in order', async () => {
      const queue = make(10)
      const entries = fill(queue, 1, 3)
      const seen: QueueEntry[] = []
      subscriptions.push(queue.read().subscribe((e) => seen.push(e)))
      expect(seen).toEqual(entries)
      const live = fill(queue, 4, 5)
      expect(seen).toEqual([...entries, ...live])
      // The same through take/toArray.
      const all = firstValueFrom(queue.read().pipe(take(7), toArray()))
      const more = fill(queue, 6, 7)
      expect(await all).toEqual([...entries, ...live, ...more])
    })

    it('emits appends live to a reader of an empty queue', async () => {
      const queue = make(10)
      const firstTwo = firstValueFrom(queue.read().pipe(take(2), toArray()))
      const entries = fill(queue, 1, 3)
      expect(await firstTwo).toEqual(entries.slice(0, 2))
    })

    it('starts again from the oldest unacknowledged entry on every subscribe', () => {
      const queue = make(10)
      const entries = fill(queue, 1, 4)
      const first: QueueEntry[] = []
      const subscription = queue.read().subscribe((e) => first.push(e))
      queue.ack(entries[0]!.seq)
      subscription.unsubscribe()
      expect(first).toEqual(entries)
      // Read but not acknowledged: 2, 3, 4 come again.
      expect(numbers(backlog(queue))).toEqual([2, 3, 4])
      expect(numbers(backlog(queue))).toEqual([2, 3, 4])
    })

    it('stops emitting to a reader that unsubscribed', () => {
      const queue = make(10)
      const seen: QueueEntry[] = []
      const subscription = queue.read().subscribe((e) => seen.push(e))
      fill(queue, 1, 1)
      subscription.unsubscribe()
      fill(queue, 2, 3)
      expect(numbers(seen)).toEqual([1])
    })

    it('serves several readers at once, each from the oldest', () => {
      const queue = make(10)
      fill(queue, 1, 2)
      const a: QueueEntry[] = []
      const b: QueueEntry[] = []
      subscriptions.push(queue.read().subscribe((e) => a.push(e)))
      fill(queue, 3, 3)
      subscriptions.push(queue.read().subscribe((e) => b.push(e)))
      fill(queue, 4, 4)
      expect(numbers(a)).toEqual([1, 2, 3, 4])
      expect(numbers(b)).toEqual([1, 2, 3, 4])
    })

    it('does not replay acknowledged entries', () => {
      const queue = make(10)
      const entries = fill(queue, 1, 5)
      for (const e of entries.slice(0, 3)) queue.ack(e.seq)
      expect(backlog(queue)).toEqual(entries.slice(3))
      for (const e of entries.slice(3)) queue.ack(e.seq)
      expect(backlog(queue)).toEqual([])
    })

    it('holds exactly the right entries after out-of-order acks', () => {
      const queue = make(10)
      const [e1, e2, e3, e4, e5] = fill(queue, 1, 5)
      queue.ack(e3!.seq)
      expect(queue.size).toBe(4)
      expect(numbers(backlog(queue))).toEqual([1, 2, 4, 5])
      queue.ack(e1!.seq)
      expect(queue.size).toBe(3)
      expect(numbers(backlog(queue))).toEqual([2, 4, 5])
      queue.ack(e5!.seq)
      queue.ack(e3!.seq) // repeated, out of order
      expect(queue.size).toBe(2)
      expect(numbers(backlog(queue))).toEqual([2, 4])
      queue.ack(e2!.seq)
      expect(numbers(backlog(queue))).toEqual([4])
      queue.ack(e4!.seq)
      expect(queue.size).toBe(0)
      expect(backlog(queue)).toEqual([])
      // Still usable afterwards.
      const [e6] = fill(queue, 6, 6)
      expect(e6!.seq).toBeGreaterThan(e5!.seq)
      expect(backlog(queue)).toEqual([e6])
    })

    it('reports when the oldest held message was received, following the head', () => {
      const queue = make(10)
      const [e1, e2, e3] = fill(queue, 1, 3)
      expect(queue.oldestReceivedAt()).toBe(message(1).receivedAt)
      queue.ack(e2!.seq)
      expect(queue.oldestReceivedAt()).toBe(message(1).receivedAt)
      queue.ack(e1!.seq)
      expect(queue.oldestReceivedAt()).toBe(message(3).receivedAt)
      queue.ack(e3!.seq)
      expect(queue.oldestReceivedAt()).toBeUndefined()
      fill(queue, 4, 4)
      expect(queue.oldestReceivedAt()).toBe(message(4).receivedAt)
    })

    it('keeps its size right over 5,000 append and ack cycles', () => {
      const queue = make(16)
      const held: QueueEntry[] = fill(queue, 1, 10)
      for (let n = 11; n <= 5010; n++) {
        const entry = queue.append(message(n))
        expect(entry).toBeDefined()
        held.push(entry!)
        queue.ack(held.shift()!.seq)
        expect(queue.size).toBe(10)
      }
      expect(numbers(backlog(queue))).toEqual(Array.from({ length: 10 }, (_, i) => 5001 + i))
      expect(queue.oldestReceivedAt()).toBe(message(5001).receivedAt)
      for (const e of held) queue.ack(e.seq)
      expect(queue.size).toBe(0)
      expect(queue.oldestReceivedAt()).toBeUndefined()
    })

    it('keeps the right entries when a long run is acked with gaps', () => {
      const queue = make(5000)
      const entries = fill(queue, 1, 5000)
      // Ack the first 3000 in order except every 500th, then the odd ones of the rest.
      for (const e of entries.slice(0, 3000)) if (numbers([e])[0]! % 500 !== 0) queue.ack(e.seq)
      for (const e of entries.slice(3000)) if (numbers([e])[0]! % 2 === 1) queue.ack(e.seq)
      const expected = [500, 1000, 1500, 2000, 2500, 3000]
      for (let n = 3002; n <= 5000; n += 2) expected.push(n)
      expect(queue.size).toBe(expected.length)
      expect(numbers(backlog(queue))).toEqual(expected)
      expect(queue.oldestReceivedAt()).toBe(message(500).receivedAt)
      // Ack the stragglers: the head jumps far ahead.
      for (const e of entries)
        if ([500, 1000, 1500, 2000, 2500, 3000].includes(numbers([e])[0]!)) queue.ack(e.seq)
      expect(queue.oldestReceivedAt()).toBe(message(3002).receivedAt)
      expect(numbers(backlog(queue))).toEqual(expected.slice(6))
    })

    it('replays every entry to a reader that acknowledges each one as it arrives', () => {
      const queue = make(5000)
      const entries = fill(queue, 1, 3000)
      const seen: QueueEntry[] = []
      const subscription = queue.read().subscribe((e) => {
        seen.push(e)
        queue.ack(e.seq)
      })
      subscriptions.push(subscription)
      expect(seen.length).toBe(3000)
      expect(seen).toEqual(entries)
      expect(queue.size).toBe(0)
      const live = fill(queue, 3001, 3002)
      expect(seen.slice(-2)).toEqual(live)
      expect(queue.size).toBe(0)
    })

    it('emits, in order and once, an entry appended by a reader during the replay', () => {
      const queue = make(10)
      fill(queue, 1, 2)
      const seen: number[] = []
      subscriptions.push(
        queue.read().subscribe((e) => {
          const [n] = numbers([e])
          seen.push(n!)
          if (n === 1) queue.append(message(3))
        }),
      )
      expect(seen).toEqual([1, 2, 3])
      fill(queue, 4, 4)
      expect(seen).toEqual([1, 2, 3, 4])
    })
  })
}
