import { mkdtempSync, readFileSync, statSync } from 'node:fs'
import { mkdir, readFile, rm, stat, truncate, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { ReplayGuard } from '../../crypto/replay-guard.js'
import { decodeSnapshot, encodeSnapshot } from '../../crypto/replay-snapshot.js'
import { FileReplayStore, MemoryReplayStore, type ReplayState } from '../../crypto/replay-store.js'
import { describeReplayStoreContract } from './replay-store-contract.js'

describeReplayStoreContract('MemoryReplayStore', async () => {
  const backing = new Map<string, ReplayState>()
  return {
    create: async () => new MemoryReplayStore(backing),
    reopen: async () => new MemoryReplayStore(backing),
    cleanup: async () => {},
  }
})

describeReplayStoreContract('FileReplayStore', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'replay-contract-'))
  const path = join(dir, 'state', 'replay-windows')
  const quiet = { warn: () => {}, error: () => {} }
  return {
    create: async () => new FileReplayStore(path, { logger: quiet }),
    reopen: async () => new FileReplayStore(path, { logger: quiet }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  }
})

interface Logged {
  level: 'warn' | 'error'
  fields: Record<string, unknown>
  message: string
}

function recordingLogger() {
  const lines: Logged[] = []
  return {
    lines,
    warn: (fields: Record<string, unknown>, message: string) =>
      lines.push({ level: 'warn', fields, message }),
    error: (fields: Record<string, unknown>, message: string) =>
      lines.push({ level: 'error', fields, message }),
  }
}

describe('FileReplayStore', () => {
  const dirs: string[] = []
  const tempPath = () => {
    const dir = mkdtempSync(join(tmpdir(), 'replay-file-'))
    dirs.push(dir)
    return join(dir, 'replay-windows')
  }
  afterEach(async () => {
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true })
  })

  /** Two commits: `.prev` holds kid 01 at 100, the current file kid 01 at 200 and kid 02 at 5. */
  async function twoGenerations(path: string): Promise<void> {
    const store = new FileReplayStore(path)
    await store.load()
    await store.save('01', { highest: 100, bitmap: 1n })
    await Promise.all([
      store.save('01', { highest: 200, bitmap: 1n }),
      store.save('02', { highest: 5, bitmap: 1n }),
    ])
    await store.close()
  }

  it('writes its files with mode 0600, in the documented format', async () => {
    const path = tempPath()
    const store = new FileReplayStore(path)
    await store.load()
    await store.save('0a', { highest: 3, bitmap: 0b101n })
    await store.save('0a', { highest: 4, bitmap: 0b1011n })
    for (const file of [path, `${path}.prev`]) expect((await stat(file)).mode & 0o777).toBe(0o600)
    const text = await readFile(path, 'utf8')
    expect(text).toMatch(/^edge-gateway replay-windows v1 \d+ [0-9a-f]{64}\n\{"generation":2,/)
    expect(text.split('\n')[1]).toBe('{"generation":2,"windows":{"0a":[4,"b"]}}')
  })

  it('group commit: 1,000 parallel acceptIfFresh calls share a few writes, each ok only once on disk', async () => {
    const path = tempPath()
    const store = new FileReplayStore(path)
    const guard = await ReplayGuard.open(store)
    const kids = Array.from({ length: 20 }, (_, i) => (i + 1).toString(16).padStart(4, '0'))
    const calls: Promise<void>[] = []
    for (let seq = 0; seq < 50; seq++) {
      for (const kid of kids) {
        calls.push(
          guard.acceptIfFresh(kid, seq).then((verdict) => {
            expect(verdict).toBe('ok')
            // Resolved: the state that records `seq` must already be on disk.
            const snapshot = decodeSnapshot(readFileSync(path))
            if ('error' in snapshot) throw new Error(snapshot.error)
            const state = snapshot.windows.get(kid)!
            expect(state.highest).toBeGreaterThanOrEqual(seq)
            expect((state.bitmap >> BigInt(state.highest - seq)) & 1n).toBe(1n)
          }),
        )
      }
    }
    await Promise.all(calls)
    expect(store.writes).toBeGreaterThan(0)
    expect(store.writes).toBeLessThan(1000)
    expect(store.writes).toBeLessThanOrEqual(3)
  })

  it('saves made while a write is in flight share the next write', async () => {
    const path = tempPath()
    const store = new FileReplayStore(path)
    await store.load()
    const first = store.save('01', { highest: 1, bitmap: 1n })
    await new Promise((resolve) => setImmediate(resolve)) // the first write has started
    const later = Array.from({ length: 100 }, (_, i) => store.save('02', { highest: i, bitmap: 1n }))
    await Promise.all([first, ...later])
    expect(store.writes).toBe(2)
    expect(await new FileReplayStore(path).load()).toEqual(
      new Map([
        ['01', { highest: 1, bitmap: 1n }],
        ['02', { highest: 99, bitmap: 1n }],
      ]),
    )
  })

  it('a torn current file: windows are floored from the previous snapshot, and it is logged', async () => {
    const path = tempPath()
    await twoGenerations(path)
    const { size } = await stat(path)
    await truncate(path, size - 10)
    const logger = recordingLogger()
    const store = new FileReplayStore(path, { logger })
    const guard = await ReplayGuard.open(store)
    expect(store.recovery).toBe('previous-floor')
    expect(logger.lines).toMatchObject([
      { level: 'error', fields: { event: 'replay_store_recovered', security: true, path } },
    ])
    // kid 01 was at 100 in the older snapshot: everything up to 100 is refused, even unseen numbers.
    expect(await guard.acceptIfFresh('01', 100)).toBe('replayed')
    expect(await guard.acceptIfFresh('01', 99)).toBe('replayed')
    expect(await guard.acceptIfFresh('01', 10)).toBe('too_old')
    expect(await guard.acceptIfFresh('01', 101)).toBe('ok')
    // The torn file is set aside; the good older snapshot is kept as .prev.
    expect((await readFile(`${path}.corrupt`)).length).toBe(size - 10)
    const prev = decodeSnapshot(await readFile(`${path}.prev`))
    expect(prev).toMatchObject({ windows: new Map([['01', { highest: 100, bitmap: 1n }]]) })
    await store.close()
    const again = new FileReplayStore(path)
    expect((await again.load()).get('01')?.highest).toBe(101)
    expect(again.recovery).toBe('current')
  })

  it('a corrupted byte is caught by the checksum', async () => {
    const path = tempPath()
    await twoGenerations(path)
    const bytes = await readFile(path)
    bytes[bytes.length - 5]! ^= 0x01
    await writeFile(path, bytes)
    const logger = recordingLogger()
    const store = new FileReplayStore(path, { logger })
    await store.load()
    expect(store.recovery).toBe('previous-floor')
    expect(logger.lines[0]?.fields.reason).toBe('checksum mismatch')
  })

  it('a missing current file with an older snapshot (crash between the renames) is floored too', async () => {
    const path = tempPath()
    await twoGenerations(path)
    await unlink(path)
    const logger = recordingLogger()
    const store = new FileReplayStore(path, { logger })
    expect(await store.load()).toEqual(new Map([['01', { highest: 100, bitmap: (1n << 64n) - 1n }]]))
    expect(store.recovery).toBe('previous-floor')
    expect(logger.lines).toMatchObject([{ level: 'warn', fields: { event: 'replay_store_recovered' } }])
  })

  it('floors from the fully written temp file as well, taking the highest of each kid', async () => {
    const path = tempPath()
    await twoGenerations(path)
    const current = await readFile(path)
    await unlink(path)
    await writeFile(`${path}.tmp`, current)
    const store = new FileReplayStore(path, { logger: recordingLogger() })
    const windows = await store.load()
    expect([...windows].map(([kid, s]) => [kid, s.highest])).toEqual([
      ['01', 200],
      ['02', 5],
    ])
  })

  it('corrupt with no valid older snapshot: starts empty and logs an error', async () => {
    const path = tempPath()
    await writeFile(path, 'edge-gateway replay-windows v1 5 00\nhello')
    await writeFile(`${path}.prev`, 'garbage')
    const logger = recordingLogger()
    const store = new FileReplayStore(path, { logger })
    expect(await store.load()).toEqual(new Map())
    expect(store.recovery).toBe('unrecoverable')
    expect(logger.lines).toMatchObject([{ level: 'error', fields: { event: 'replay_store_unrecoverable' } }])
  })

  it('a file over the size limit is treated as corrupt, and saves over it are refused', async () => {
    const path = tempPath()
    await twoGenerations(path)
    const size = statSync(path).size
    const logger = recordingLogger()
    const store = new FileReplayStore(path, { logger, maxBytes: size - 1 })
    await store.load()
    expect(store.recovery).toBe('previous-floor')
    expect(logger.lines[0]?.fields.reason).toMatch(/over the limit/)

    const small = new FileReplayStore(tempPath(), { maxBytes: 256 })
    const guard = await ReplayGuard.open(small)
    await expect(guard.acceptIfFresh('aa'.repeat(32), 1)).resolves.toBe('ok')
    const many = Array.from({ length: 10 }, (_, i) => guard.acceptIfFresh(`${'bb'.repeat(31)}0${i}`, 1))
    await expect(Promise.all(many)).rejects.toMatchObject({ code: 'CRYPTO_ERR_REPLAY_STORE_FULL' })
    // Refused saves leave the numbers unaccepted, so a retransmission is not taken for a replay.
    expect(await guard.check(`${'bb'.repeat(31)}00`, 1)).toBe('ok')
  })

  it('a failed write rejects its saves with CRYPTO_ERR_REPLAY_STORE_IO; the next write works', async () => {
    const path = tempPath()
    const store = new FileReplayStore(path)
    const guard = await ReplayGuard.open(store)
    await mkdir(`${path}.tmp`) // the temp file cannot be opened for writing
    await expect(guard.acceptIfFresh('01', 7)).rejects.toMatchObject({ code: 'CRYPTO_ERR_REPLAY_STORE_IO' })
    await rm(`${path}.tmp`, { recursive: true })
    expect(await guard.acceptIfFresh('01', 7)).toBe('ok')
    expect(await new FileReplayStore(path).load()).toEqual(new Map([['01', { highest: 7, bitmap: 1n }]]))
  })

  it('a stale temp file beside a valid current file is ignored', async () => {
    const path = tempPath()
    await twoGenerations(path)
    await writeFile(
      `${path}.tmp`,
      encodeSnapshot({ generation: 9, windows: new Map([['01', { highest: 999, bitmap: 1n }]]) }),
    )
    const store = new FileReplayStore(path)
    expect((await store.load()).get('01')?.highest).toBe(200)
    expect(store.recovery).toBe('current')
  })

  it('survives a crash: a new store on the same file sees every resolved save without close', async () => {
    const path = tempPath()
    const guard = await ReplayGuard.open(new FileReplayStore(path))
    expect(await guard.acceptIfFresh('01', 3)).toBe('ok')
    // The first store is dropped without close().
    const after = await ReplayGuard.open(new FileReplayStore(path))
    expect(await after.acceptIfFresh('01', 3)).toBe('replayed')
  })

  it('refuses a bad size limit', () => {
    expect(() => new FileReplayStore('x', { maxBytes: 10 })).toThrow(
      expect.objectContaining({ code: 'CRYPTO_ERR_BAD_INPUT' }),
    )
  })
})
