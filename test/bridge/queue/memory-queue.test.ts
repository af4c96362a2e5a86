import { describe, expect, it } from 'vitest'
import { MemoryQueue } from '../../../bridge/queue/memory-queue.js'
import { message, uplinkQueueContract } from './contract.js'

uplinkQueueContract(
  'MemoryQueue',
  async (capacity, deviceShare) =>
    new MemoryQueue(capacity, deviceShare === undefined ? {} : { deviceShare }),
)

describe('MemoryQueue', () => {
  const seqs = async (queue: MemoryQueue, ns: number[]) =>
    Promise.all(ns.map(async (n) => (await queue.append(message(n)))?.seq))

  it('numbers entries consecutively from 1 by default', async () => {
    expect(await seqs(new MemoryQueue(10), [1, 2, 3])).toEqual([1, 2, 3])
  })

  it('numbers entries from the first seq it is given', async () => {
    const queue = new MemoryQueue(10, { firstSeq: 1000 })
    expect(await seqs(queue, [1, 2, 3])).toEqual([1000, 1001, 1002])
    queue.ack(1001)
    expect(queue.size).toBe(2)
    queue.ack(1)
    expect(queue.size).toBe(2)
  })

  it('does not spend a seq on a refused append', async () => {
    const queue = new MemoryQueue(1)
    expect((await queue.append(message(1)))!.seq).toBe(1)
    expect(await queue.append(message(2))).toBeUndefined()
    queue.ack(1)
    expect((await queue.append(message(3)))!.seq).toBe(2)
  })

  it('holds the entry before append returns, so a synchronous reader sees it at once', () => {
    const queue = new MemoryQueue(10)
    void queue.append(message(1))
    expect(queue.size).toBe(1)
    const seen: number[] = []
    queue
      .read()
      .subscribe((e) => seen.push(e.seq))
      .unsubscribe()
    expect(seen).toEqual([1])
  })
})
