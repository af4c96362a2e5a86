import { describe, expect, it } from 'vitest'
import { ReplayGuard } from '../../crypto/replay-guard.js'
import { MemoryReplayStore, type ReplayState, type ReplayStore } from '../../crypto/replay-store.js'

/** A store whose saves wait until released, to observe what the guard does meanwhile. */
class GatedStore implements ReplayStore {
  readonly inner = new MemoryReplayStore()
  private gates: (() => void)[] = []
  failNext = false

  load(): Promise<Map<string, ReplayState>> {
    return this.inner.load()
  }

  async save(kidHex: string, state: ReplayState): Promise<void> {
    await new Promise<void>((resolve) => this.gates.push(resolve))
    if (this.failNext) {
      this.failNext = false
      throw new Error('disk full')
    }
    await this.inner.save(kidHex, state)
  }

  release(): void {
    for (const gate of this.gates.splice(0)) gate()
  }

  close(): Promise<void> {
    return this.inner.close()
  }
}

const tick = () => new Promise((resolve) => setImmediate(resolve))

describe('ReplayGuard', () => {
  it('resolves ok only after the store has saved the window', async () => {
    const store = new GatedStore()
    const guard = await ReplayGuard.open(store)
    let settled = false
    const verdict = guard.acceptIfFresh('0a', 1).then((v) => {
      settled = true
      return v
    })
    await tick()
    expect(settled).toBe(false)
    expect(await store.inner.load()).toEqual(new Map())
    store.release()
    expect(await verdict).toBe('ok')
    expect(await store.inner.load()).toEqual(new Map([['0a', { highest: 1, bitmap: 1n }]]))
  })

  it('refuses a duplicate at once, while the first is still being saved', async () => {
    const store = new GatedStore()
    const guard = await ReplayGuard.open(store)
    const first = guard.acceptIfFresh('0a', 1)
    await tick()
    expect(await guard.acceptIfFresh('0a', 1)).toBe('replayed')
    store.release()
    expect(await first).toBe('ok')
  })

  it('a failed save rejects, and the number can be accepted again', async () => {
    const store = new GatedStore()
    const guard = await ReplayGuard.open(store)
    store.failNext = true
    const failed = guard.acceptIfFresh('0a', 5)
    await tick()
    store.release()
    await expect(failed).rejects.toThrow('disk full')
    expect(await guard.check('0a', 5)).toBe('ok')
    const retry = guard.acceptIfFresh('0a', 5)
    await tick()
    store.release()
    expect(await retry).toBe('ok')
  })

  it('refused numbers are not saved', async () => {
    const store = new MemoryReplayStore()
    const guard = new ReplayGuard(store)
    expect(await guard.acceptIfFresh('0a', 100)).toBe('ok')
    expect(await guard.acceptIfFresh('0a', 100)).toBe('replayed')
    expect(await guard.acceptIfFresh('0a', 1)).toBe('too_old')
    expect(store.writes).toBe(1)
  })

  it('loads the store lazily when built with new, once', async () => {
    const store = new MemoryReplayStore(new Map([['0a', { highest: 9, bitmap: 1n }]]))
    let loads = 0
    const counting: ReplayStore = {
      load: () => {
        loads++
        return store.load()
      },
      save: (kid, state) => store.save(kid, state),
      close: () => store.close(),
    }
    const guard = new ReplayGuard(counting)
    const verdicts = await Promise.all([guard.acceptIfFresh('0a', 9), guard.acceptIfFresh('0a', 10)])
    expect(verdicts).toEqual(['replayed', 'ok'])
    expect(loads).toBe(1)
  })

  it('retries loading after a failed load', async () => {
    let fail = true
    const store = new MemoryReplayStore()
    const flaky: ReplayStore = {
      load: () => (fail ? Promise.reject(new Error('EIO')) : store.load()),
      save: (kid, state) => store.save(kid, state),
      close: () => store.close(),
    }
    await expect(ReplayGuard.open(flaky)).rejects.toThrow('EIO')
    fail = false
    const guard = new ReplayGuard(flaky)
    await expect(guard.acceptIfFresh('0a', 1)).resolves.toBe('ok')
  })

  it('refuses malformed kids and sequence numbers', async () => {
    const guard = await ReplayGuard.open(new MemoryReplayStore())
    await expect(guard.acceptIfFresh('0A', 1)).rejects.toMatchObject({ code: 'CRYPTO_ERR_BAD_INPUT' })
    await expect(guard.acceptIfFresh('0a', -1)).rejects.toMatchObject({ code: 'CRYPTO_ERR_BAD_SEQ' })
    await expect(guard.acceptIfFresh('0a', 2 ** 40)).rejects.toMatchObject({ code: 'CRYPTO_ERR_BAD_SEQ' })
  })
})
