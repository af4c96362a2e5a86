import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { NonceJournal } from '../../core/nonce-journal.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'

let dir: string
let n = 0
const fresh = () => join(dir, `journal-${++n}`)

beforeAll(async () => {
  dir = await makeTempDir('edge-gw-nonce-journal-')
})

afterAll(async () => {
  await removeDir(dir)
})

describe('NonceJournal', () => {
  it('remembers a key until its expiry, and again after a reopen', async () => {
    let now = 1_000
    const file = fresh()
    const journal = await NonceJournal.open(file, { maxEntries: 10, now: () => now })
    expect(await journal.remember('01:aa', 5_000)).toBe('fresh')
    expect(await journal.remember('01:aa', 5_000)).toBe('replayed')
    expect(await journal.remember('01:bb', 2_000)).toBe('fresh')
    // Not closed: what a crash leaves behind is what was appended.
    const reopened = await NonceJournal.open(file, { maxEntries: 10, now: () => now })
    expect(await reopened.remember('01:aa', 5_000)).toBe('replayed')
    now = 2_001
    // Expired: accepted again (the token it stood for is refused as expired by then anyway).
    expect(await reopened.remember('01:bb', 9_000)).toBe('fresh')
    await reopened.close()
    await journal.close()
  })

  it('is written 0600 and compacted to the live keys at open', async () => {
    let now = 0
    const file = fresh()
    const journal = await NonceJournal.open(file, { maxEntries: 10, now: () => now })
    await journal.remember('aa', 100)
    await journal.remember('bb', 300)
    await journal.close()
    expect((await stat(file)).mode & 0o777).toBe(0o600)
    expect(await readFile(file, 'utf8')).toBe('aa 100\nbb 300\n')
    now = 200
    const reopened = await NonceJournal.open(file, { maxEntries: 10, now: () => now })
    expect(reopened.size).toBe(1)
    // The latest expiry forgotten goes first (see the clock-step tests below).
    expect(await readFile(file, 'utf8')).toBe('floor 100\nbb 300\n')
    await reopened.close()
  })

  it('ignores a torn last line and lines that are not records', async () => {
    const file = fresh()
    await writeFile(file, 'aa 900\nnot a record\nbb 9', { mode: 0o600 })
    const journal = await NonceJournal.open(file, { maxEntries: 10, now: () => 0 })
    expect(journal.size).toBe(2)
    expect(await journal.remember('aa', 900)).toBe('replayed')
    // "bb 9" parses as a whole record whose expiry (9 ms) is still ahead of the clock (0).
    expect(await journal.remember('bb', 900)).toBe('replayed')
    await journal.close()
    const torn = fresh()
    await writeFile(torn, 'aa 900\ncc', { mode: 0o600 })
    const again = await NonceJournal.open(torn, { maxEntries: 10, now: () => 0 })
    expect(again.size).toBe(1)
    expect(await again.remember('cc', 900)).toBe('fresh')
    await again.close()
  })

  it("refuses new keys with 'full' while maxEntries live keys are remembered", async () => {
    let now = 0
    const journal = await NonceJournal.open(fresh(), { maxEntries: 2, now: () => now })
    expect(await journal.remember('a1', 100)).toBe('fresh')
    expect(await journal.remember('a2', 200)).toBe('fresh')
    expect(await journal.remember('a3', 300)).toBe('full')
    now = 150
    expect(await journal.remember('a3', 300)).toBe('fresh')
    await journal.close()
  })

  it('a key used twice in one tick is fresh once', async () => {
    const journal = await NonceJournal.open(fresh(), { maxEntries: 10, now: () => 0 })
    const outcomes = await Promise.all([journal.remember('dd', 10), journal.remember('dd', 10)])
    expect(outcomes).toEqual(['fresh', 'replayed'])
    await journal.close()
  })

  it('compacts as it goes, keeping every live key', async () => {
    let now = 0
    const file = fresh()
    const journal = await NonceJournal.open(file, { maxEntries: 5_000, now: () => now })
    // 3,000 keys that expire, then 10 that live: past 1,024 lines the file is rewritten.
    for (let i = 0; i < 3_000; i++) await journal.remember(i.toString(16).padStart(4, '0'), 10)
    now = 20
    const live = Array.from({ length: 10 }, (_, i) => `ff${i}`)
    await Promise.all(live.map((k) => journal.remember(k, 1_000)))
    for (let i = 0; i < 1_100; i++) await journal.remember(`e${i.toString(16).padStart(4, '0')}`, 1_000)
    const lines = (await readFile(file, 'utf8')).trim().split('\n')
    expect(lines.length).toBeLessThan(3_000)
    await journal.close()
    const reopened = await NonceJournal.open(file, { maxEntries: 5_000, now: () => now })
    for (const k of live) expect(await reopened.remember(k, 1_000)).toBe('replayed')
    expect(reopened.size).toBe(1_110)
    await reopened.close()
  })

  it('refuses keys that are not hex', async () => {
    const journal = await NonceJournal.open(fresh(), { maxEntries: 10, now: () => 0 })
    await expect(journal.remember('a b', 10)).rejects.toThrow('Expected a nonce key of 1 to 64 hex digits')
    await journal.close()
  })

  it('appends one line per key', async () => {
    const file = fresh()
    const journal = await NonceJournal.open(file, { maxEntries: 10, now: () => 0 })
    await Promise.all(['a0', 'a1', 'a2'].map((k) => journal.remember(k, 50)))
    expect(await readFile(file, 'utf8')).toBe('a0 50\na1 50\na2 50\n')
    await journal.close()
  })

  describe('when the wall clock steps back (a Raspberry Pi has no real-time clock)', () => {
    it('a key forgotten at a reopen is not taken as fresh once the clock is behind its expiry again', async () => {
      let now = 1_000
      const file = fresh()
      const journal = await NonceJournal.open(file, { maxEntries: 10, now: () => now })
      expect(await journal.remember('aa', 5_000)).toBe('fresh')
      await journal.close()
      // A restart after the expiry forgets the key; then a power cut restores an older time.
      now = 6_000
      await (await NonceJournal.open(file, { maxEntries: 10, now: () => now })).close()
      expect(await readFile(file, 'utf8')).toBe('floor 5000\n')
      now = 2_000
      const behind = await NonceJournal.open(file, { maxEntries: 10, now: () => now })
      expect(behind.forgottenUpTo).toBe(5_000)
      expect(await behind.remember('aa', 5_000)).toBe('replayed')
      // A key that expires at or before the floor cannot be told from a forgotten one.
      expect(await behind.remember('bb', 4_000)).toBe('replayed')
      expect(await behind.remember('cc', 7_000)).toBe('fresh')
      await behind.close()
    })

    it('keys forgotten by a compaction, or to make room, move the floor, on disk too', async () => {
      let now = 0
      const file = fresh()
      const journal = await NonceJournal.open(file, { maxEntries: 2_000, now: () => now })
      for (let i = 0; i < 1_100; i++) await journal.remember(`a${i.toString(16).padStart(4, '0')}`, 100 + i)
      // Past 1,024 lines the next append compacts: every key above has expired by then.
      now = 5_000
      for (let i = 0; i < 1_100; i++) await journal.remember(`b${i.toString(16).padStart(4, '0')}`, 9_000)
      expect(journal.forgottenUpTo).toBe(1_199)
      expect((await readFile(file, 'utf8')).split('\n')[0]).toBe('floor 1199')
      await journal.close()
      now = 150
      const behind = await NonceJournal.open(file, { maxEntries: 2_000, now: () => now })
      expect(await behind.remember('a0000', 100)).toBe('replayed')
      expect(await behind.remember('a044b', 1_199)).toBe('replayed')
      await behind.close()

      // Full, with expired keys: they are dropped to make room, and the floor takes their expiry.
      let t = 0
      const small = await NonceJournal.open(fresh(), { maxEntries: 2, now: () => t })
      await small.remember('c1', 100)
      await small.remember('c2', 200)
      t = 300
      expect(await small.remember('c3', 900)).toBe('fresh')
      expect(small.forgottenUpTo).toBe(200)
      t = 50
      expect(await small.remember('c1', 100)).toBe('replayed')
      await small.close()
    })

    it('a floor ahead of the clock (a clock that ran ahead, then was set back) is worth a warning that says how to recover', async () => {
      const file = fresh()
      await writeFile(file, 'floor 90000\naa 95000\n', { mode: 0o600 })
      const journal = await NonceJournal.open(file, { maxEntries: 10, now: () => 30_000 })
      expect(journal.floorAheadWarning('token nonces', 30_000)).toBe(
        `${file}: token nonces were forgotten up to 1970-01-01T00:01:30.000Z, ahead of the system clock (1970-01-01T00:00:30.000Z): the clock ran ahead and was set back. Until it passes that time, token nonces whose freshness ends before it are refused as replayed. If the clock is right now, stop the gateway and remove the line "floor 90000" from ${file}`,
      )
      expect(journal.floorAheadWarning('token nonces', 90_000)).toBeUndefined()
      await journal.close()
    })

    it('a journal of an earlier version, without a floor line, opens as before', async () => {
      const file = fresh()
      await writeFile(file, 'aa 100\nbb 300\n', { mode: 0o600 })
      const journal = await NonceJournal.open(file, { maxEntries: 10, now: () => 200 })
      expect(journal.size).toBe(1)
      expect(journal.forgottenUpTo).toBe(100)
      await journal.close()
    })
  })
})
