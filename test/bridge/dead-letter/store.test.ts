import { readdir, readFile, stat, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { firstValueFrom, take, toArray } from 'rxjs'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { readDeadLetters } from '../../../bridge/dead-letter/inspect.js'
import { pendingRequests, writeRequest } from '../../../bridge/dead-letter/requests.js'
import { DEAD_LETTER_LOG, DeadLetterStore } from '../../../bridge/dead-letter/store.js'
import { BodyProtection } from '../../../bridge/envelope.js'
import type { QueueEntry } from '../../../bridge/queue/queue.js'
import { createLogger } from '../../../core/logger.js'
import { makeTempDir, removeDir } from '../../helpers/tmp.js'
import { LogCapture } from '../../integration/harness.js'
import { message, until } from '../queue/contract.js'

const entry = (seq: number): QueueEntry => ({
  seq,
  message: { ...message(seq), protection: BodyProtection.hpke },
})

const dirs: string[] = []
const stores: DeadLetterStore[] = []
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close()
  for (const d of dirs.splice(0)) await removeDir(d)
})

async function folder(): Promise<string> {
  const dir = await makeTempDir('dead-letter')
  dirs.push(dir)
  return join(dir, 'dead-letter')
}

async function open(
  dir: string,
  options: { quotaBytes?: number; requestPollMs?: number; logs?: LogCapture } = {},
) {
  const opened = await DeadLetterStore.open(dir, {
    quotaBytes: options.quotaBytes ?? 1024 * 1024,
    logger: createLogger({ level: 'debug', destination: options.logs ?? new LogCapture() }),
    requestPollMs: options.requestPollMs ?? 3_600_000,
  })
  stores.push(opened.store)
  return opened
}

async function reopen(store: DeadLetterStore, options: Parameters<typeof open>[1] = {}) {
  await store.close()
  return open(store.dir, options)
}

describe('DeadLetterStore', () => {
  it('keeps a letter across a restart: gw-seq, the message and its protection, reason and detail; folder 0700, log 0600', async () => {
    const dir = await folder()
    const { store } = await open(dir)
    expect(await store.add(entry(41), 'no_mapping', 'no cloud.topics mapping covers its topic')).toBe('held')
    expect(await store.add(entry(42), 'unsendable', 'too big')).toBe('held')
    const { store: again, report } = await reopen(store)
    expect(report).toEqual({ letters: 2, retrying: 0, tornBytes: 0, damaged: 0 })
    expect(again.stats()).toMatchObject({
      depth: 2,
      retrying: 0,
      byReason: { no_mapping: 1, protection_changed: 0, unsendable: 1 },
    })
    expect((await stat(dir)).mode & 0o777).toBe(0o700)
    expect((await stat(join(dir, DEAD_LETTER_LOG))).mode & 0o777).toBe(0o600)
    await again.apply({ action: 'retry', seqs: [42] })
    const [retried] = await firstValueFrom(again.retries().pipe(take(1), toArray()))
    expect(retried).toEqual(entry(42))
    expect((await readDeadLetters(dir)).map((l) => [l.seq, l.reason, l.detail, l.state])).toEqual([
      [41, 'no_mapping', 'no cloud.topics mapping covers its topic', 'held'],
      [42, 'unsendable', 'too big', 'retrying'],
    ])
  })

  it('takes a gw-seq once: the same entry again is one letter; a new reason replaces the old', async () => {
    const { store } = await open(await folder())
    await store.add(entry(7), 'no_mapping', 'first')
    await store.add(entry(7), 'no_mapping', 'first')
    expect(store.stats().depth).toBe(1)
    await store.add(entry(7), 'protection_changed', 'second')
    const { store: again } = await reopen(store)
    expect(again.stats()).toMatchObject({ depth: 1, byReason: { no_mapping: 0, protection_changed: 1 } })
    expect((await readDeadLetters(again.dir)).map((l) => [l.seq, l.reason, l.detail])).toEqual([
      [7, 'protection_changed', 'second'],
    ])
  })

  it('refuses a letter over its quota; dropping letters gives the room back (compaction)', async () => {
    const { store } = await open(await folder(), { quotaBytes: 300 })
    expect(await store.add(entry(1), 'no_mapping', '')).toBe('held')
    expect(await store.add(entry(2), 'no_mapping', '')).toBe('held')
    expect(await store.add(entry(3), 'no_mapping', '')).toBe('full')
    expect(store.stats().depth).toBe(2)
    expect(await store.apply({ action: 'drop', seqs: [1, 99] })).toEqual({ changed: [1], unknown: [99] })
    expect(await store.add(entry(3), 'no_mapping', '')).toBe('held')
    expect((await readDeadLetters(store.dir)).map((l) => l.seq)).toEqual([2, 3])
    expect(store.stats().bytes).toBeLessThanOrEqual(300)
  })

  it('holds a retried letter the cloud refused again, under its new reason, across a reopen', async () => {
    const { store } = await open(await folder())
    await store.add(entry(1), 'no_mapping', '')
    await store.apply({ action: 'retry', all: true })
    expect(await store.add(entry(1), 'cloud_refused', 'reason code 0x87')).toBe('held')
    await store.close()
    const letters = await readDeadLetters(store.dir)
    expect(letters.map((l) => [l.seq, l.state, l.reason, l.detail])).toEqual([
      [1, 'held', 'cloud_refused', 'reason code 0x87'],
    ])
  })

  it('emits a letter again when it is retried again after the cloud refused it (same session)', async () => {
    const { store } = await open(await folder())
    await store.add(entry(1), 'no_mapping', '')
    const emitted: number[] = []
    const subscription = store.retries().subscribe((e) => emitted.push(e.seq))
    await store.apply({ action: 'retry', all: true })
    await until(() => emitted.length === 1, 'the first retry')
    expect(await store.add(entry(1), 'cloud_refused', 'reason code 0x87')).toBe('held')
    await store.apply({ action: 'retry', all: true })
    await until(() => emitted.length === 2, 'the second retry')
    expect(emitted).toEqual([1, 1])
    subscription.unsubscribe()
  })

  it('shrinks the log to nothing once every letter is resolved', async () => {
    const { store } = await open(await folder())
    for (const seq of [1, 2, 3]) await store.add(entry(seq), 'no_mapping', '')
    await store.apply({ action: 'retry', all: true })
    await store.settle(1)
    await store.settle(2)
    await store.apply({ action: 'drop', seqs: [3] })
    expect(store.stats()).toMatchObject({ depth: 0, bytes: 0 })
    expect((await stat(join(store.dir, DEAD_LETTER_LOG))).size).toBe(0)
  })

  it('cuts a torn last entry at open and keeps the letters before it', async () => {
    const { store } = await open(await folder())
    await store.add(entry(1), 'no_mapping', '')
    await store.add(entry(2), 'no_mapping', '')
    await store.close()
    const path = join(store.dir, DEAD_LETTER_LOG)
    const size = (await stat(path)).size
    await truncate(path, size - 5)
    const { store: again, report } = await open(store.dir)
    expect(report).toMatchObject({ letters: 1, damaged: 0 })
    expect(report.tornBytes).toBeGreaterThan(0)
    expect((await readDeadLetters(again.dir)).map((l) => l.seq)).toEqual([1])
    expect(await again.add(entry(2), 'no_mapping', '')).toBe('held')
    expect((await readDeadLetters(again.dir)).map((l) => l.seq)).toEqual([1, 2])
  })

  it('emits retried letters to a live reader as a request retries them, and those still retrying on subscribe', async () => {
    const { store } = await open(await folder())
    for (const seq of [1, 2, 3]) await store.add(entry(seq), 'no_mapping', '')
    await store.apply({ action: 'retry', seqs: [1] })
    const seen: number[] = []
    const sub = store.retries().subscribe((e) => seen.push(e.seq))
    await until(() => seen.length === 1, 'the letter retrying on subscribe')
    await store.apply({ action: 'retry', seqs: [1, 3] })
    await until(() => seen.length === 2, 'the newly retried letter')
    sub.unsubscribe()
    expect(seen).toEqual([1, 3])
  })

  it('applies an operator request left in its folder while it runs, and one left while it was stopped at open', async () => {
    const logs = new LogCapture()
    const dir = await folder()
    const { store } = await open(dir, { requestPollMs: 20, logs })
    for (const seq of [1, 2, 3]) await store.add(entry(seq), 'no_mapping', '')
    await writeRequest(dir, { action: 'drop', seqs: [2] })
    await until(() => store.stats().depth === 2, 'the drop applied')
    await vi.waitFor(async () => expect(await pendingRequests(dir)).toEqual([]), { timeout: 10_000 })
    expect(logs.records.find((r) => String(r.msg).startsWith('dead letters dropped'))).toMatchObject({
      level: 30,
      action: 'drop',
      changed: [2],
      unknown: [],
    })
    await store.close()
    await writeRequest(dir, { action: 'retry', all: true, reason: 'no_mapping' })
    await writeFile(join(dir, 'requests', '0000000000001-000000000000.json'), '{"action":"explode"}')
    const { store: again, report } = await open(dir, { logs })
    expect(report).toMatchObject({ letters: 2, retrying: 2 })
    expect(await readdir(join(dir, 'requests'))).toEqual([])
    expect(logs.records.filter((r) => String(r.msg).startsWith('dead-letter request ignored'))).toEqual([
      expect.objectContaining({ level: 40, problem: 'action must be retry or drop' }),
    ])
    expect(again.stats().retrying).toBe(2)
  })

  it('writes no payload bytes outside the letter: the log holds the record, the request folder none', async () => {
    const { store } = await open(await folder())
    await store.add(
      { seq: 5, message: { ...message(5), payload: Buffer.from('secret-payload') } },
      'no_mapping',
      '',
    )
    expect((await readFile(join(store.dir, DEAD_LETTER_LOG))).includes('secret-payload')).toBe(true)
    const [info] = await readDeadLetters(store.dir)
    expect(JSON.stringify(info)).not.toContain('secret-payload')
    expect(info!.payloadBytes).toBe('secret-payload'.length)
  })
})
