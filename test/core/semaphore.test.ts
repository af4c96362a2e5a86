import { describe, expect, it } from 'vitest'
import { Semaphore } from '../../core/semaphore.js'
import {
  DEFAULT_SCRYPT,
  hashPassword,
  PEPPERED_SCRYPT,
  scryptMemoryBytes,
  scryptSlots,
  verifyAgainstDummy,
} from '../../gateway/auth/password.js'

const MiB = 1024 * 1024

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

  it('starts a task only while the summed cost fits the budget, in arrival order; one alone always runs', async () => {
    const sem = new Semaphore(3, 10)
    const started: string[] = []
    const gates = new Map<string, () => void>()
    const task = (name: string, cost: number) =>
      sem.run(async () => {
        started.push(name)
        await new Promise<void>((resolve) => gates.set(name, resolve))
      }, cost)
    const all = [task('a', 6), task('b', 6), task('c', 3), task('d', 1), task('e', 25)]
    await new Promise((r) => setImmediate(r))
    // b does not fit beside a; c would, but waits behind b.
    expect(started).toEqual(['a'])
    expect([sem.inUse, sem.costInUse, sem.queued]).toEqual([1, 6, 4])
    gates.get('a')!()
    await new Promise((r) => setImmediate(r))
    expect(started).toEqual(['a', 'b', 'c', 'd'])
    expect(sem.costInUse).toBe(10)
    for (const name of ['b', 'c']) gates.get(name)!()
    await new Promise((r) => setImmediate(r))
    // e alone is over the budget: it waits for d, then runs by itself.
    expect(started).toEqual(['a', 'b', 'c', 'd'])
    gates.get('d')!()
    await new Promise((r) => setImmediate(r))
    expect(started).toEqual(['a', 'b', 'c', 'd', 'e'])
    expect([sem.inUse, sem.costInUse]).toEqual([1, 25])
    gates.get('e')!()
    await Promise.all(all)
    expect([sem.inUse, sem.costInUse, sem.queued]).toEqual([0, 0, 0])
    sem.resize(3, 30)
    expect(sem.budget).toBe(30)
    expect(() => sem.resize(3, 0)).toThrow('Expected a budget above 0, got 0')
  })

  it('password checks ask for the memory scrypt takes, and run together only while it fits lan.passwordChecks.memoryMiB', async () => {
    expect(scryptMemoryBytes(DEFAULT_SCRYPT)).toBe(16 * MiB)
    expect(scryptMemoryBytes(PEPPERED_SCRYPT)).toBe(MiB)
    const before = { size: scryptSlots.size, budget: scryptSlots.budget }
    try {
      for (const [budgetMiB, params, expected] of [
        [16, DEFAULT_SCRYPT, 1],
        [32, DEFAULT_SCRYPT, 2],
        [16, PEPPERED_SCRYPT, 2],
      ] as const) {
        scryptSlots.resize(2, budgetMiB * MiB)
        let peak = 0
        let peakCost = 0
        const watcher = setInterval(() => {
          peak = Math.max(peak, scryptSlots.inUse)
          peakCost = Math.max(peakCost, scryptSlots.costInUse)
        }, 1)
        await Promise.all(Array.from({ length: 6 }, () => hashPassword('x', params)))
        clearInterval(watcher)
        expect({ budgetMiB, params, peak }).toEqual({ budgetMiB, params, peak: expected })
        expect(peakCost).toBe(expected * scryptMemoryBytes(params))
      }
    } finally {
      scryptSlots.resize(before.size, before.budget)
    }
  })

  it('password checks use at most the configured number of threads of the pool at once', async () => {
    const before = scryptSlots.size
    try {
      for (const slots of [2, 1]) {
        scryptSlots.resize(slots, 64 * MiB)
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
      scryptSlots.resize(before, 16 * MiB)
    }
  })
})
