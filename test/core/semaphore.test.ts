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

  it('password checks use at most 2 threads of the pool at once', async () => {
    let peak = 0
    const watcher = setInterval(() => {
      peak = Math.max(peak, scryptSlots.inUse)
    }, 1)
    await Promise.all(Array.from({ length: 6 }, () => verifyAgainstDummy(Buffer.from('x'))))
    clearInterval(watcher)
    expect(peak).toBe(2)
    expect(scryptSlots.inUse).toBe(0)
  })
})
