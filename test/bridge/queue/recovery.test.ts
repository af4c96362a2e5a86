import { appendFile, readdir, readFile, stat, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { FileQueue } from '../../../bridge/queue/file-queue.js'
import { recordSize } from '../../../bridge/queue/record.js'
import { makeTempDir, removeDir } from '../../helpers/tmp.js'
import { backlog, fill, message, numbers } from './contract.js'

const dirs: string[] = []
afterAll(async () => {
  for (const dir of dirs.splice(0)) await removeDir(dir)
})

const OPTIONS = { quotaBytes: 64 * 1024 * 1024, segmentBytes: 1024 * 1024 }
const opened: FileQueue[] = []
afterEach(async () => {
  for (const q of opened.splice(0)) await q.close()
})

async function reopen(dir: string) {
  const result = await FileQueue.open(dir, OPTIONS)
  opened.push(result.queue)
  return result
}

/** A closed queue holding messages 1..count in one segment, with where each record starts and ends. */
async function logOf(count: number, options = OPTIONS) {
  const base = await makeTempDir('queue-recovery')
  dirs.push(base)
  const dir = join(base, 'q')
  const { queue } = await FileQueue.open(dir, options)
  const entries = await fill(queue, 1, count)
  await queue.close()
  const logs = (await readdir(dir)).filter((n) => n.endsWith('.log')).sort()
  const starts: number[] = []
  let at = 16
  for (let n = 1; n <= count; n++) {
    starts.push(at)
    at += recordSize(message(n))
  }
  return { dir, path: join(dir, logs[0]!), logs, entries, starts, end: at }
}

async function flipByte(path: string, offset: number, mask = 0xff): Promise<void> {
  const buf = await readFile(path)
  buf[offset]! ^= mask
  await writeFile(path, buf)
}

describe('FileQueue recovery', () => {
  it('cuts a record torn at any byte, delivers the rest, and numbers above the torn one', async () => {
    const probe = await logOf(5)
    const last = probe.starts[4]!
    expect(probe.end).toBe((await stat(probe.path)).size)
    for (let cut = last + 1; cut < probe.end; cut++) {
      const { dir, path, entries } = await logOf(5)
      await truncate(path, cut)
      const { queue, recovery } = await reopen(dir)
      expect(recovery).toMatchObject({ records: 4, held: 4, tornBytes: cut - last, corrupted: 0 })
      expect(recovery.details).toEqual([
        expect.stringMatching(
          new RegExp(`torn or damaged tail of ${cut - last} bytes at byte ${last} .*: cut`),
        ),
      ])
      expect((await stat(path)).size).toBe(last)
      expect(await backlog(queue)).toEqual(entries.slice(0, 4))
      const next = (await queue.append(message(6)))!
      expect(next.seq).toBeGreaterThan(entries[4]!.seq)
      await queue.close()
      const again = await reopen(dir)
      expect(again.recovery).toMatchObject({ tornBytes: 0, corrupted: 0, details: [] })
      expect(numbers(await backlog(again.queue))).toEqual([1, 2, 3, 4, 6])
    }
  })

  it('cuts zeros left after the last record by a power loss', async () => {
    const { dir, path, entries } = await logOf(5)
    await appendFile(path, Buffer.alloc(4096))
    const { queue, recovery } = await reopen(dir)
    expect(recovery).toMatchObject({ records: 5, tornBytes: 4096, corrupted: 0 })
    expect(await backlog(queue)).toEqual(entries)
  })

  const damage: Array<[string, (start: number, end: number) => number, number, RegExp]> = [
    ['a payload byte', (_start, end) => end - 1, 0x01, /checksum mismatch/],
    ['a low byte of the length', (start) => start + 8, 0xff, /checksum mismatch|runs past|implausible/],
    ['the high byte of the length', (start) => start + 11, 0x01, /runs past the end|implausible/],
    ['the record marker', (start) => start, 0x10, /no record marker/],
    ['the sequence number', (start) => start + 13, 0x04, /checksum mismatch/],
  ]
  for (const [what, where, mask, reason] of damage) {
    it(`skips a middle record with a damaged ${what}, reports it, and delivers the records after it`, async () => {
      const { dir, path, entries, starts } = await logOf(5)
      const start = starts[2]!
      await flipByte(path, where(start, starts[3]!), mask)
      const { queue, recovery } = await reopen(dir)
      expect(recovery).toMatchObject({ records: 4, held: 4, tornBytes: 0, corrupted: 1 })
      expect(recovery.details).toEqual([
        expect.stringMatching(new RegExp(`bytes ${start}\\.\\.${starts[3]}`)),
      ])
      expect(recovery.details[0]).toMatch(reason)
      expect(await backlog(queue)).toEqual([entries[0], entries[1], entries[3], entries[4]])
      expect((await queue.append(message(6)))!.seq).toBeGreaterThan(entries[4]!.seq)
    })
  }

  it('skips a valid record whose sequence number does not fit where it lies', async () => {
    const { dir, path, entries, starts } = await logOf(5)
    const buf = await readFile(path)
    // Record 2 copied over record 4 (same size): a good checksum, an old number.
    expect(recordSize(message(2))).toBe(recordSize(message(4)))
    buf.copy(buf, starts[3]!, starts[1]!, starts[2]!)
    await writeFile(path, buf)
    const { queue, recovery } = await reopen(dir)
    expect(recovery.corrupted).toBe(1)
    expect(recovery.details[0]).toMatch(/has sequence number \d+, expected just above \d+: skipped/)
    expect(await backlog(queue)).toEqual([entries[0], entries[1], entries[2], entries[4]])
  })

  it('reads on past a damaged segment header, taking the base from the first record', async () => {
    const { dir, path, entries } = await logOf(3)
    await flipByte(path, 5)
    const { queue, recovery } = await reopen(dir)
    expect(recovery).toMatchObject({ records: 3, corrupted: 1 })
    expect(recovery.details[0]).toMatch(/damaged header/)
    expect(await backlog(queue)).toEqual(entries)
  })

  it('removes a segment torn while it was being made, and numbers on', async () => {
    const { dir, entries } = await logOf(3)
    await writeFile(join(dir, 'seg-000000000099.log'), Buffer.from([0x47, 0x45]), { mode: 0o600 })
    const { queue, recovery } = await reopen(dir)
    expect(recovery.details).toEqual([
      expect.stringMatching(/seg-000000000099.log: no valid header and no record/),
    ])
    expect(await backlog(queue)).toEqual(entries)
    expect((await queue.append(message(4)))!.seq).toBe(entries[2]!.seq + 1)
  })

  it('handles damage in several segments at once: each finding reported, the rest delivered in order', async () => {
    const { dir, logs } = await logOf(200, { ...OPTIONS, segmentBytes: 2048 })
    expect(logs.length).toBeGreaterThan(4)
    const second = join(dir, logs[1]!)
    await flipByte(second, 16 + 40)
    const lastLog = join(dir, logs.at(-1)!)
    await truncate(lastLog, (await stat(lastLog)).size - 3)
    const { queue, recovery } = await reopen(dir)
    expect(recovery.corrupted).toBe(1)
    expect(recovery.tornBytes).toBeGreaterThan(0)
    expect(recovery.details).toHaveLength(2)
    const seen = numbers(await backlog(queue))
    expect(seen.length).toBe(recovery.held)
    expect(seen.length).toBe(198)
    for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThan(seen[i - 1]!)
  })

  describe('ack files', () => {
    async function ackedLog() {
      const log = await logOf(10)
      const { queue } = await reopen(log.dir)
      for (const e of log.entries.slice(0, 6)) if (e !== log.entries[1]) queue.ack(e.seq)
      await queue.close()
      const ackName = (await readdir(log.dir)).find((n) => n.endsWith('.ack'))!
      return { ...log, ackPath: join(log.dir, ackName) }
    }

    it('applies the acknowledgements recorded before', async () => {
      const { dir } = await ackedLog()
      const { queue, recovery } = await reopen(dir)
      expect(recovery).toMatchObject({ records: 10, held: 5, details: [] })
      expect(numbers(await backlog(queue))).toEqual([2, 7, 8, 9, 10])
    })

    it('cuts a torn last ack entry so that later entries stay aligned', async () => {
      const { dir, ackPath, entries } = await ackedLog()
      await appendFile(ackPath, Buffer.from([1, 2, 3, 4, 5, 6, 7]))
      const first = await reopen(dir)
      expect(numbers(await backlog(first.queue))).toEqual([2, 7, 8, 9, 10])
      expect((await stat(ackPath)).size).toBe(40)
      first.queue.ack(entries[1]!.seq)
      await first.queue.close()
      const second = await reopen(dir)
      expect(numbers(await backlog(second.queue))).toEqual([7, 8, 9, 10])
    })

    it('ignores a damaged ack entry and reports it: those messages are sent again', async () => {
      const { dir, ackPath } = await ackedLog()
      const size = (await stat(ackPath)).size
      expect(size).toBe(40) // runs [1] and [3..6]
      await flipByte(ackPath, 20 + 6)
      const { queue, recovery } = await reopen(dir)
      expect(recovery.details).toEqual([expect.stringMatching(/1 damaged ack entries ignored/)])
      expect(numbers(await backlog(queue))).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10])
    })

    it('removes an ack file whose segment is gone', async () => {
      const { dir } = await logOf(1)
      await writeFile(join(dir, 'seg-000000000077.ack'), Buffer.alloc(20), { mode: 0o600 })
      await reopen(dir)
      expect(await readdir(dir)).not.toContain('seg-000000000077.ack')
    })
  })
})
