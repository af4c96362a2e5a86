import { afterEach, describe, expect, it } from 'vitest'
import { ReplayGuard } from '../../crypto/replay-guard.js'
import type { ReplayState, ReplayStore } from '../../crypto/replay-store.js'
import { MAX_SEQ } from '../../crypto/replay-window.js'

/**
 * The contract every ReplayStore passes (as MQTT.js' abstract_store does for
 * its stores). A fixture gives fresh storage, and a second store over the same
 * storage to simulate a restart; the first one is not necessarily closed.
 */
export interface ReplayStoreFixture {
  /** A store over fresh, empty storage. */
  create(): Promise<ReplayStore>
  /** A new store over the storage of the last `create`, as after a restart. */
  reopen(): Promise<ReplayStore>
  cleanup(): Promise<void>
}

const FULL = (1n << 64n) - 1n
const kidOf = (i: number) => (0x1000 + i).toString(16).padStart(6, '0')

export function describeReplayStoreContract(
  name: string,
  makeFixture: () => Promise<ReplayStoreFixture>,
): void {
  describe(`ReplayStore contract: ${name}`, () => {
    let fixture: ReplayStoreFixture | undefined
    const setup = async () => {
      fixture = await makeFixture()
      return { fixture, store: await fixture.create() }
    }
    afterEach(async () => {
      await fixture?.cleanup()
      fixture = undefined
    })

    it('a fresh store loads no windows', async () => {
      const { store } = await setup()
      expect(await store.load()).toEqual(new Map())
    })

    it('a saved window is loaded back, by the same store and after a restart', async () => {
      const { fixture, store } = await setup()
      await store.load()
      await store.save('0a', { highest: 7, bitmap: 0b1011n })
      expect(await store.load()).toEqual(new Map([['0a', { highest: 7, bitmap: 0b1011n }]]))
      const restarted = await fixture.reopen()
      expect(await restarted.load()).toEqual(new Map([['0a', { highest: 7, bitmap: 0b1011n }]]))
    })

    it('keeps extreme values exactly: 64-bit bitmap, 40-bit number, empty and 32-byte kids', async () => {
      const { fixture, store } = await setup()
      await store.load()
      const states: [string, ReplayState][] = [
        ['', { highest: 0, bitmap: 1n }],
        ['ff'.repeat(32), { highest: MAX_SEQ, bitmap: FULL }],
        ['00', { highest: 2 ** 33 + 5, bitmap: 1n << 63n }],
      ]
      await Promise.all(states.map(([kid, s]) => store.save(kid, s)))
      expect(await (await fixture.reopen()).load()).toEqual(new Map(states))
    })

    it('the last save of a kid wins, and 1,000 parallel saves are all durable', async () => {
      const { fixture, store } = await setup()
      await store.load()
      const expected = new Map<string, ReplayState>()
      const saves: Promise<void>[] = []
      for (let i = 0; i < 1000; i++) {
        const kid = kidOf(i % 50)
        const state = { highest: i, bitmap: BigInt(i) | 1n }
        expected.set(kid, state)
        saves.push(store.save(kid, state))
      }
      await Promise.all(saves)
      expect(await store.load()).toEqual(expected)
      expect(await (await fixture.reopen()).load()).toEqual(expected)
    })

    it('a save before any load keeps the windows already stored', async () => {
      const { fixture, store } = await setup()
      await store.save('01', { highest: 1, bitmap: 1n })
      const restarted = await fixture.reopen()
      await restarted.save('02', { highest: 2, bitmap: 1n })
      expect(await (await fixture.reopen()).load()).toEqual(
        new Map([
          ['01', { highest: 1, bitmap: 1n }],
          ['02', { highest: 2, bitmap: 1n }],
        ]),
      )
    })

    it('load returns copies', async () => {
      const { store } = await setup()
      await store.load()
      await store.save('01', { highest: 1, bitmap: 1n })
      const loaded = await store.load()
      loaded.get('01')!.highest = 99
      loaded.set('02', { highest: 2, bitmap: 1n })
      expect(await store.load()).toEqual(new Map([['01', { highest: 1, bitmap: 1n }]]))
    })

    it('a state changed by the caller after save is not affected', async () => {
      const { fixture, store } = await setup()
      await store.load()
      const state = { highest: 1, bitmap: 1n }
      const saved = store.save('01', state)
      state.highest = 50
      await saved
      expect(await (await fixture.reopen()).load()).toEqual(new Map([['01', { highest: 1, bitmap: 1n }]]))
    })

    it('refuses malformed kids and states, storing nothing', async () => {
      const { store } = await setup()
      await store.load()
      for (const kid of ['AB', 'abc', 'zz', 'ab'.repeat(33), 7 as unknown as string]) {
        await expect(store.save(kid, { highest: 1, bitmap: 1n }), String(kid)).rejects.toMatchObject({
          code: 'CRYPTO_ERR_BAD_INPUT',
        })
      }
      for (const state of [
        { highest: -2, bitmap: 0n },
        { highest: MAX_SEQ + 1, bitmap: 1n },
        { highest: 3, bitmap: 1n << 64n },
        { highest: -1, bitmap: 1n },
      ]) {
        await expect(store.save('01', state)).rejects.toMatchObject({ code: 'CRYPTO_ERR_BAD_INPUT' })
      }
      expect(await store.load()).toEqual(new Map())
    })

    it('close waits for saves in progress, then refuses new ones', async () => {
      const { fixture, store } = await setup()
      await store.load()
      const pending = store.save('01', { highest: 3, bitmap: 1n })
      await store.close()
      await pending
      await expect(store.save('01', { highest: 4, bitmap: 1n })).rejects.toMatchObject({
        code: 'CRYPTO_ERR_REPLAY_STORE_CLOSED',
      })
      expect(await (await fixture.reopen()).load()).toEqual(new Map([['01', { highest: 3, bitmap: 1n }]]))
    })

    describe('through a ReplayGuard', () => {
      it('a number accepted before a restart is refused after it', async () => {
        const { fixture, store } = await setup()
        const guard = await ReplayGuard.open(store)
        expect(await guard.acceptIfFresh('0a0b', 41)).toBe('ok')
        expect(await guard.acceptIfFresh('0a0b', 500)).toBe('ok')
        expect(await guard.acceptIfFresh('0a0b', 41)).toBe('too_old')
        expect(await guard.acceptIfFresh('0a0b', 499)).toBe('ok')

        const after = await ReplayGuard.open(await fixture.reopen())
        expect(await after.acceptIfFresh('0a0b', 500)).toBe('replayed')
        expect(await after.acceptIfFresh('0a0b', 499)).toBe('replayed')
        expect(await after.acceptIfFresh('0a0b', 41)).toBe('too_old')
        expect(await after.acceptIfFresh('0a0b', 498)).toBe('ok')
        expect(await after.acceptIfFresh('0c', 41)).toBe('ok')
      })

      it('1,000 parallel calls for interleaved kids are each ok once, and all durable', async () => {
        const { fixture, store } = await setup()
        const guard = new ReplayGuard(store)
        const calls: Promise<string>[] = []
        for (let seq = 0; seq < 100; seq++) {
          for (let k = 0; k < 10; k++) calls.push(guard.acceptIfFresh(kidOf(k), seq))
        }
        const verdicts = await Promise.all(calls)
        expect(verdicts.every((v) => v === 'ok')).toBe(true)

        const after = await ReplayGuard.open(await fixture.reopen())
        for (let k = 0; k < 10; k++) {
          for (const seq of [99, 98, 50, 36])
            expect(await after.acceptIfFresh(kidOf(k), seq)).toBe('replayed')
          expect(await after.acceptIfFresh(kidOf(k), 35)).toBe('too_old')
        }
      })

      it('the same number sent twice at once is ok only once', async () => {
        const { store } = await setup()
        const guard = await ReplayGuard.open(store)
        const verdicts = await Promise.all([1, 2, 3, 4].map(() => guard.acceptIfFresh('0a', 9)))
        expect(verdicts.sort()).toEqual(['ok', 'replayed', 'replayed', 'replayed'])
      })
    })
  })
}
