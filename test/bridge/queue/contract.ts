import { firstValueFrom, type Subscription, take, timeout, toArray } from 'rxjs'
import { afterEach, describe, expect, it } from 'vitest'
import type { QueueEntry, UplinkQueue } from '../../../bridge/queue/queue.js'
import { recordSize } from '../../../bridge/queue/record.js'
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

/** Appends messages `from`..`to`, each after the one before resolved, failing if the queue refused one. */
export async function fill(queue: UplinkQueue, from: number, to: number): Promise<QueueEntry[]> {
  const entries: QueueEntry[] = []
  for (let n = from; n <= to; n++) {
    const entry = await queue.append(message(n))
    if (!entry) throw new Error(`queue refused message ${n} at size ${queue.size}`)
    entries.push(entry)
  }
  return entries
}

/** Appends messages `from`..`to` all at once (none awaited before the next is issued). */
export async function fillAtOnce(queue: UplinkQueue, from: number, to: number): Promise<QueueEntry[]> {
  const appends: Promise<QueueEntry | undefined>[] = []
  for (let n = from; n <= to; n++) appends.push(queue.append(message(n)))
  const entries = await Promise.all(appends)
  return entries.map((entry, i) => {
    if (!entry) throw new Error(`queue refused message ${from + i}`)
    return entry
  })
}

/** Every entry a new reader replays now: the first `size` entries it emits. */
export function backlog(queue: UplinkQueue): Promise<QueueEntry[]> {
  return firstValueFrom(queue.read().pipe(take(queue.size), toArray(), timeout(10_000)))
}

/** Resolves once `condition` holds; fails after 10 s with `what`. */
export async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
}

/** Lets pending I/O and the emissions it triggers run. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 20))

/** The message numbers of entries, from their receivedAt. */
export const numbers = (entries: ReadonlyArray<QueueEntry>) =>
  entries.map((e) => e.message.receivedAt - 1_700_000_000_000)

const totalDropped = (queue: UplinkQueue) => Object.values(queue.stats().dropped).reduce((a, b) => a + b, 0)

/** Message `n` of device `device` (its number's device id replaced). */
export const fromDevice = (device: string, n: number): UplinkMessage => ({ ...message(n), deviceId: device })

/**
 * The behaviour every UplinkQueue must have. `make(capacity, deviceShare)` returns a
 * fresh, empty queue holding at most `capacity` messages, of which one device may hold
 * `deviceShare` once it is half full (default: no per-device limit); the suite closes it.
 */
export function uplinkQueueContract(
  name: string,
  make: (capacity: number, deviceShare?: number) => Promise<UplinkQueue>,
): void {
  describe(`UplinkQueue contract: ${name}`, () => {
    const subscriptions: Subscription[] = []
    const queues: UplinkQueue[] = []
    const fresh = async (capacity: number, deviceShare?: number) => {
      const queue = await make(capacity, deviceShare)
      queues.push(queue)
      return queue
    }
    afterEach(async () => {
      for (const s of subscriptions.splice(0)) s.unsubscribe()
      for (const q of queues.splice(0)) await q.close()
    })

    it('starts empty, with the capacity it was made with', async () => {
      const queue = await fresh(5)
      expect(queue.size).toBe(0)
      expect(queue.capacity).toBe(5)
      const stats = queue.stats()
      expect(stats.depth).toBe(0)
      expect(stats.oldestReceivedAt).toBeUndefined()
      expect(stats.dropped).toEqual({
        qos0_quota: 0,
        qos1_quota: 0,
        qos0_capacity: 0,
        qos1_capacity: 0,
        qos0_device_quota: 0,
        qos1_device_quota: 0,
      })
      expect(await backlog(queue)).toEqual([])
    })

    it('numbers entries with strictly increasing integer seqs and keeps the message as given', async () => {
      const queue = await fresh(100)
      const entries = await fill(queue, 1, 50)
      for (const [i, entry] of entries.entries()) {
        expect(Number.isSafeInteger(entry.seq)).toBe(true)
        if (i > 0) expect(entry.seq).toBeGreaterThan(entries[i - 1]!.seq)
        expect(entry.message).toEqual(message(i + 1))
      }
      expect(queue.size).toBe(50)
      expect(await backlog(queue)).toEqual(entries)
    })

    it('numbers appends issued together in the order of the calls, and replays them in that order', async () => {
      const queue = await fresh(1000)
      const entries = await fillAtOnce(queue, 1, 500)
      expect(numbers(entries)).toEqual(Array.from({ length: 500 }, (_, i) => i + 1))
      for (let i = 1; i < entries.length; i++) expect(entries[i]!.seq).toBeGreaterThan(entries[i - 1]!.seq)
      expect(await backlog(queue)).toEqual(entries)
    })

    it('keeps seqs increasing across acks, and never reuses one', async () => {
      const queue = await fresh(2)
      const seqs: number[] = []
      for (let n = 1; n <= 20; n++) {
        const entry = (await queue.append(message(n)))!
        seqs.push(entry.seq)
        queue.ack(entry.seq)
      }
      expect(new Set(seqs).size).toBe(20)
      expect([...seqs].sort((a, b) => a - b)).toEqual(seqs)
    })

    it('refuses an append at capacity, counts it by QoS, and keeps its size', async () => {
      const queue = await fresh(3)
      const entries = await fill(queue, 1, 3)
      expect(await queue.append(message(4))).toBeUndefined()
      expect(await queue.append(message(5))).toBeUndefined()
      expect(await queue.append({ ...message(6), qos: 0 })).toBeUndefined()
      expect(queue.size).toBe(3)
      expect(queue.stats().dropped).toMatchObject({ qos1_capacity: 2, qos0_capacity: 1 })
      expect(totalDropped(queue)).toBe(3)
      expect(await backlog(queue)).toEqual(entries)
    })

    it('frees one slot per ack', async () => {
      const queue = await fresh(3)
      const [first, second] = await fill(queue, 1, 3)
      queue.ack(second!.seq)
      expect(queue.size).toBe(2)
      const fourth = await queue.append(message(4))
      expect(fourth).toBeDefined()
      expect(fourth!.seq).toBeGreaterThan(first!.seq)
      expect(queue.size).toBe(3)
      expect(await queue.append(message(5))).toBeUndefined()
      expect(numbers(await backlog(queue))).toEqual([1, 3, 4])
    })

    it('ignores the ack of an unknown seq', async () => {
      const queue = await fresh(10)
      const entries = await fill(queue, 1, 3)
      const last = entries.at(-1)!.seq
      for (const seq of [last + 1, last + 1000, entries[0]!.seq - 1, -1, 0.5, Number.NaN, Infinity]) {
        queue.ack(seq)
      }
      expect(queue.size).toBe(3)
      expect(await backlog(queue)).toEqual(entries)
    })

    it('ignores a repeated ack, so it cannot free a second slot', async () => {
      const queue = await fresh(2)
      const [first] = await fill(queue, 1, 2)
      queue.ack(first!.seq)
      queue.ack(first!.seq)
      queue.ack(first!.seq)
      expect(queue.size).toBe(1)
      expect(await queue.append(message(3))).toBeDefined()
      expect(await queue.append(message(4))).toBeUndefined()
      expect(numbers(await backlog(queue))).toEqual([2, 3])
    })

    it('ignores acks on an empty queue', async () => {
      const queue = await fresh(2)
      queue.ack(1)
      queue.ack(0)
      expect(queue.size).toBe(0)
      const [a, b] = await fill(queue, 1, 2)
      queue.ack(a!.seq)
      queue.ack(b!.seq)
      queue.ack(b!.seq)
      expect(queue.size).toBe(0)
      expect(await backlog(queue)).toEqual([])
    })

    it('replays every unacknowledged entry, oldest first, then emits appends live in order', async () => {
      const queue = await fresh(10)
      const entries = await fill(queue, 1, 3)
      const seen: QueueEntry[] = []
      subscriptions.push(queue.read().subscribe((e) => seen.push(e)))
      await until(() => seen.length === 3, 'the backlog')
      expect(seen).toEqual(entries)
      const live = await fill(queue, 4, 5)
      await until(() => seen.length === 5, 'the live entries')
      expect(seen).toEqual([...entries, ...live])
      // The same through take/toArray.
      const all = firstValueFrom(queue.read().pipe(take(7), toArray()))
      const more = await fill(queue, 6, 7)
      expect(await all).toEqual([...entries, ...live, ...more])
      await settle()
      expect(seen).toEqual([...entries, ...live, ...more])
    })

    it('emits appends live to a reader of an empty queue', async () => {
      const queue = await fresh(10)
      const firstTwo = firstValueFrom(queue.read().pipe(take(2), toArray()))
      const entries = await fill(queue, 1, 3)
      expect(await firstTwo).toEqual(entries.slice(0, 2))
    })

    it('emits an entry only once its append is settled, never one that was refused', async () => {
      const queue = await fresh(2)
      const seen: QueueEntry[] = []
      subscriptions.push(queue.read().subscribe((e) => seen.push(e)))
      const results = await Promise.all([1, 2, 3].map((n) => queue.append(message(n))))
      expect(results[2]).toBeUndefined()
      await until(() => seen.length === 2, 'two entries')
      await settle()
      expect(seen).toEqual(results.slice(0, 2))
    })

    it('starts again from the oldest unacknowledged entry on every subscribe', async () => {
      const queue = await fresh(10)
      const entries = await fill(queue, 1, 4)
      const first: QueueEntry[] = []
      const subscription = queue.read().subscribe((e) => first.push(e))
      await until(() => first.length === 4, 'the backlog')
      queue.ack(entries[0]!.seq)
      subscription.unsubscribe()
      expect(first).toEqual(entries)
      // Read but not acknowledged: 2, 3, 4 come again.
      expect(numbers(await backlog(queue))).toEqual([2, 3, 4])
      expect(numbers(await backlog(queue))).toEqual([2, 3, 4])
    })

    it('stops emitting to a reader that unsubscribed', async () => {
      const queue = await fresh(10)
      const seen: QueueEntry[] = []
      const subscription = queue.read().subscribe((e) => seen.push(e))
      await fill(queue, 1, 1)
      await until(() => seen.length === 1, 'the first entry')
      subscription.unsubscribe()
      await fill(queue, 2, 3)
      await settle()
      expect(numbers(seen)).toEqual([1])
    })

    it('serves several readers at once, each from the oldest', async () => {
      const queue = await fresh(10)
      await fill(queue, 1, 2)
      const a: QueueEntry[] = []
      const b: QueueEntry[] = []
      subscriptions.push(queue.read().subscribe((e) => a.push(e)))
      await fill(queue, 3, 3)
      subscriptions.push(queue.read().subscribe((e) => b.push(e)))
      await fill(queue, 4, 4)
      await until(() => a.length === 4 && b.length === 4, 'both readers')
      await settle()
      expect(numbers(a)).toEqual([1, 2, 3, 4])
      expect(numbers(b)).toEqual([1, 2, 3, 4])
    })

    it('does not replay acknowledged entries', async () => {
      const queue = await fresh(10)
      const entries = await fill(queue, 1, 5)
      for (const e of entries.slice(0, 3)) queue.ack(e.seq)
      expect(await backlog(queue)).toEqual(entries.slice(3))
      for (const e of entries.slice(3)) queue.ack(e.seq)
      expect(await backlog(queue)).toEqual([])
    })

    it('holds exactly the right entries after out-of-order acks', async () => {
      const queue = await fresh(10)
      const [e1, e2, e3, e4, e5] = await fill(queue, 1, 5)
      queue.ack(e3!.seq)
      expect(queue.size).toBe(4)
      expect(numbers(await backlog(queue))).toEqual([1, 2, 4, 5])
      queue.ack(e1!.seq)
      expect(queue.size).toBe(3)
      expect(numbers(await backlog(queue))).toEqual([2, 4, 5])
      queue.ack(e5!.seq)
      queue.ack(e3!.seq) // repeated, out of order
      expect(queue.size).toBe(2)
      expect(numbers(await backlog(queue))).toEqual([2, 4])
      queue.ack(e2!.seq)
      expect(numbers(await backlog(queue))).toEqual([4])
      queue.ack(e4!.seq)
      expect(queue.size).toBe(0)
      expect(await backlog(queue)).toEqual([])
      // Still usable afterwards.
      const [e6] = await fill(queue, 6, 6)
      expect(e6!.seq).toBeGreaterThan(e5!.seq)
      expect(await backlog(queue)).toEqual([e6])
    })

    it('reports depth, bytes and when the oldest held message was received, following the head', async () => {
      const queue = await fresh(10)
      const empty = queue.stats().bytes
      const [e1, e2, e3] = await fill(queue, 1, 3)
      expect(queue.stats()).toMatchObject({ depth: 3, oldestReceivedAt: message(1).receivedAt })
      expect(queue.stats().bytes).toBeGreaterThan(empty)
      queue.ack(e2!.seq)
      expect(queue.stats()).toMatchObject({ depth: 2, oldestReceivedAt: message(1).receivedAt })
      queue.ack(e1!.seq)
      expect(queue.stats().oldestReceivedAt).toBe(message(3).receivedAt)
      queue.ack(e3!.seq)
      expect(queue.stats().oldestReceivedAt).toBeUndefined()
      expect(queue.stats().depth).toBe(0)
      await fill(queue, 4, 4)
      expect(queue.stats().oldestReceivedAt).toBe(message(4).receivedAt)
    })

    it('keeps its size right over 5,000 append and ack cycles', async () => {
      const queue = await fresh(16)
      const held: QueueEntry[] = await fill(queue, 1, 10)
      for (let n = 11; n <= 5010; n++) {
        const entry = await queue.append(message(n))
        expect(entry).toBeDefined()
        held.push(entry!)
        queue.ack(held.shift()!.seq)
        expect(queue.size).toBe(10)
      }
      expect(numbers(await backlog(queue))).toEqual(Array.from({ length: 10 }, (_, i) => 5001 + i))
      expect(queue.stats().oldestReceivedAt).toBe(message(5001).receivedAt)
      for (const e of held) queue.ack(e.seq)
      expect(queue.size).toBe(0)
      expect(queue.stats().oldestReceivedAt).toBeUndefined()
    })

    it('keeps the right entries when a long run is acked with gaps', async () => {
      const queue = await fresh(5000)
      const entries = await fillAtOnce(queue, 1, 5000)
      // Ack the first 3000 in order except every 500th, then the odd ones of the rest.
      for (const e of entries.slice(0, 3000)) if (numbers([e])[0]! % 500 !== 0) queue.ack(e.seq)
      for (const e of entries.slice(3000)) if (numbers([e])[0]! % 2 === 1) queue.ack(e.seq)
      const expected = [500, 1000, 1500, 2000, 2500, 3000]
      for (let n = 3002; n <= 5000; n += 2) expected.push(n)
      expect(queue.size).toBe(expected.length)
      expect(numbers(await backlog(queue))).toEqual(expected)
      expect(queue.stats().oldestReceivedAt).toBe(message(500).receivedAt)
      // Ack the stragglers: the head jumps far ahead.
      for (const e of entries)
        if ([500, 1000, 1500, 2000, 2500, 3000].includes(numbers([e])[0]!)) queue.ack(e.seq)
      expect(queue.stats().oldestReceivedAt).toBe(message(3002).receivedAt)
      expect(numbers(await backlog(queue))).toEqual(expected.slice(6))
    })

    it('replays every entry to a reader that acknowledges each one as it arrives', async () => {
      const queue = await fresh(5000)
      const entries = await fillAtOnce(queue, 1, 3000)
      const seen: QueueEntry[] = []
      subscriptions.push(
        queue.read().subscribe((e) => {
          seen.push(e)
          queue.ack(e.seq)
        }),
      )
      await until(() => seen.length === 3000, 'the backlog')
      expect(seen).toEqual(entries)
      expect(queue.size).toBe(0)
      const live = await fill(queue, 3001, 3002)
      await until(() => seen.length === 3002, 'the live entries')
      expect(seen.slice(-2)).toEqual(live)
      expect(queue.size).toBe(0)
    })

    it('emits, in order and once, an entry appended by a reader during the replay', async () => {
      const queue = await fresh(10)
      await fill(queue, 1, 2)
      const seen: number[] = []
      subscriptions.push(
        queue.read().subscribe((e) => {
          const [n] = numbers([e])
          seen.push(n!)
          if (n === 1) void queue.append(message(3))
        }),
      )
      await until(() => seen.length === 3, 'three entries')
      expect(seen).toEqual([1, 2, 3])
      await fill(queue, 4, 4)
      await until(() => seen.length === 4, 'the fourth entry')
      await settle()
      expect(seen).toEqual([1, 2, 3, 4])
    })

    it('counts what each device holds, by message and record bytes, as appends and acks come', async () => {
      const queue = await fresh(100)
      expect(queue.usage('a')).toEqual({ messages: 0, bytes: 0 })
      const [a1, b1, a2] = await Promise.all([
        queue.append(fromDevice('a', 1)),
        queue.append(fromDevice('b', 2)),
        queue.append(fromDevice('a', 3)),
      ])
      const bytesOf = (n: number, device: string) => recordSize(fromDevice(device, n))
      expect(queue.usage('a')).toEqual({ messages: 2, bytes: bytesOf(1, 'a') + bytesOf(3, 'a') })
      expect(queue.usage('b')).toEqual({ messages: 1, bytes: bytesOf(2, 'b') })
      expect(queue.devices(5)).toEqual({
        holding: 2,
        top: [
          { device: 'a', messages: 2, bytes: bytesOf(1, 'a') + bytesOf(3, 'a') },
          { device: 'b', messages: 1, bytes: bytesOf(2, 'b') },
        ],
      })
      queue.ack(a1!.seq)
      queue.ack(a1!.seq)
      expect(queue.usage('a')).toEqual({ messages: 1, bytes: bytesOf(3, 'a') })
      queue.ack(a2!.seq)
      queue.ack(b1!.seq)
      expect(queue.usage('a')).toEqual({ messages: 0, bytes: 0 })
      expect(queue.devices(5)).toEqual({ holding: 0, top: [] })
    })

    it('from half full, refuses the device holding its share first, by QoS, and still takes the others', async () => {
      // Capacity 8, a quarter each: 2 messages; under pressure from 4 held.
      const queue = await fresh(8, 0.25)
      for (const n of [1, 2, 3, 4]) expect(await queue.append(fromDevice('flood', n))).toBeDefined()
      expect(await queue.tryAppend(fromDevice('flood', 5))).toEqual({
        refused: 'qos1_device_quota',
        device: queue.usage('flood'),
      })
      expect(await queue.append({ ...fromDevice('flood', 6), qos: 0 })).toBeUndefined()
      expect(queue.usage('flood').messages).toBe(4)
      // The others get their share, and the queue's bounds still apply to them.
      for (const n of [7, 8]) expect(await queue.append(fromDevice('quiet', n))).toBeDefined()
      expect(await queue.append(fromDevice('quiet', 9))).toBeUndefined()
      for (const n of [10, 11]) expect(await queue.append(fromDevice('other', n))).toBeDefined()
      expect(queue.size).toBe(8)
      expect(await queue.tryAppend(fromDevice('last', 12))).toEqual({
        refused: 'qos1_capacity',
        device: { messages: 0, bytes: 0 },
      })
      expect(queue.stats().dropped).toMatchObject({
        qos1_device_quota: 2,
        qos0_device_quota: 1,
        qos1_capacity: 1,
      })
      // Once the flooder's messages are acknowledged it is under its share again.
      for (const entry of (await backlog(queue)).filter((e) => e.message.deviceId === 'flood'))
        queue.ack(entry.seq)
      expect(await queue.append(fromDevice('flood', 13))).toBeDefined()
    })

    it('refuses a message it cannot store, with a code, and holds nothing of it', async () => {
      const queue = await fresh(10)
      await expect(queue.append({ ...message(1), topic: 't'.repeat(70_000) })).rejects.toMatchObject({
        code: 'QUEUE_ERR_RECORD',
      })
      expect(queue.size).toBe(0)
      const [entry] = await fill(queue, 2, 2)
      expect(await backlog(queue)).toEqual([entry])
    })

    it('on close completes its readers, refuses appends with a code, and can be closed again', async () => {
      const queue = await fresh(10)
      await fill(queue, 1, 2)
      let completed = false
      const seen: QueueEntry[] = []
      queue.read().subscribe({ next: (e) => seen.push(e), complete: () => (completed = true) })
      await until(() => seen.length === 2, 'the backlog')
      await queue.close()
      expect(completed).toBe(true)
      await expect(queue.append(message(3))).rejects.toMatchObject({ code: 'QUEUE_ERR_CLOSED' })
      await queue.close()
      expect(await firstValueFrom(queue.read().pipe(toArray()))).toEqual([])
    })
  })
}
