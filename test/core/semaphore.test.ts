import { describe, expect, it } from 'vitest'
import { Semaphore } from '../../core/semaphore.js'
import { scryptSlots, verifyAgainstDummy } from '../../gateway/auth/password.js'

describe('Semaphore', () => {
  it('runs at most `slots` tasks at once, in arrival order, and passes results and errors through', async () => {
    const sem = new Semaphore(2)
    const order: string[] = []
    let peak = 0
    const gates = new Map<string, () => void>()
    const task = (name: string) =>
      sem.run(async () => {
        order.push(`start ${name}`)
        peak = Math.max(peak, sem.inUse)
        await new Promise<void>((resolve) => gates.set(name, resolve))
        order.push(`end ${name}`)
        if (name === 'c') throw new Error('c failed')
        return name
      })
    const results = ['a', 'b', 'c', 'd'].map((n) => task(n).catch((err: Error) => err.message))
    await new Promise((r) => setImmediate(r))
    expect(order).toEqual(['start a', 'start b'])
    expect(sem.queued).toBe(2)
    gates.get('a')!()
    await new Promise((r) => setImmediate(r))
    expect(order).toEqual(['start a', 'start b', 'end a', 'start c'])
    gates.get('b')!()
    await new Promise((r) => setImmediate(r))
    gates.get('c')!()
    await new Promise((r) => setImmediate(r))
    gates.get('d')!()
    expect(await Promise.all(results)).toEqual(['a', 'b', 'c failed', 'd'])
    expect(peak).toBe(2)
    expect(sem.inUse).toBe(0)
  })

  it('grows and shrinks: more slots start waiting tasks at once, fewer start none until below', async () => {
    const sem = new Semaphore(1)
    const started: string[] = []
    const gates = new Map<string, () => void>()
    const task = (name: string) =>
      sem.run(async () => {
        started.push(name)
        await new Promise<void>((resolve) => gates.set(name, resolve))
      })
    const all = ['a', 'b', 'c', 'd', 'e'].map(task)
    await new Promise((r) => setImmediate(r))
    expect(started).toEqual(['a'])
    sem.resize(3)
    await new Promise((r) => setImmediate(r))
    expect(started).toEqual(['a', 'b', 'c'])
    expect([sem.size, sem.inUse, sem.queued]).toEqual([3, 3, 2])
    sem.resize(1)
    gates.get('a')!()
    gates.get('b')!()
    await new Promise((r) => setImmediate(r))
    // Two finished, one still runs: with 1 slot nothing new starts.
    expect(started).toEqual(['a', 'b', 'c'])
    expect([sem.inUse, sem.queued]).toEqual([1, 2])
    gates.get('c')!()
    await new Promise((r) => setImmediate(r))
    expect(started).toEqual(['a', 'b', 'c', 'd'])
    gates.get('d')!()
    await new Promise((r) => setImmediate(r))
    gates.get('e')!()
    await Promise.all(all)
    expect(sem.inUse).toBe(0)
    expect(() => sem.resize(0)).toThrow('Expected at least 1 slot, got 0')
  })

  it('password checks use at most the configured number of threads of the pool at once', async () => {
    const before = scryptSlots.size
    try {
      for (const slots of [2, 1]) {
        scryptSlots.resize(slots)
        let peak = 0
        const watcher = setInterval(() => {
          peak = Math.max(peak, scryptSlots.inUse)
        }, 1)
        await Promise.all(Array.from({ length: 6 }, () => verifyAgainstDummy(Buffer.from('x'))))
        clearInterval(watcher)
        expect(peak).toBe(slots)
        expect(scryptSlots.inUse).toBe(0)
      }
    } finally {
      scryptSlots.resize(before)
    }
  })
})
