import { describe, expect, it } from 'vitest'
import { MemoryQueue } from '../../../bridge/queue/memory-queue.js'
import { message, uplinkQueueContract } from './contract.js'

uplinkQueueContract('MemoryQueue', (capacity) => new MemoryQueue(capacity))

describe('MemoryQueue', () => {
  it('numbers entries consecutively from 1 by default', () => {
    const queue = new MemoryQueue(10)
    expect([1, 2, 3].map((n) => queue.append(message(n))!.seq)).toEqual([1, 2, 3])
  })

  it('numbers entries from the first seq it is given', () => {
    const queue = new MemoryQueue(10, 1000)
    expect([1, 2, 3].map((n) => queue.append(message(n))!.seq)).toEqual([1000, 1001, 1002])
    queue.ack(1001)
    expect(queue.size).toBe(2)
    queue.ack(1)
    expect(queue.size).toBe(2)
  })

  it('does not spend a seq on a refused append', () => {
    const queue = new MemoryQueue(1)
    expect(queue.append(message(1))!.seq).toBe(1)
    expect(queue.append(message(2))).toBeUndefined()
    queue.ack(1)
    expect(queue.append(message(3))!.seq).toBe(2)
  })
})
