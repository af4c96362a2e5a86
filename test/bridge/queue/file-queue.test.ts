import { readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type Subscription, take } from 'rxjs'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { FileQueue, type FileQueueOptions } from '../../../bridge/queue/file-queue.js'
import type { QueueEntry } from '../../../bridge/queue/queue.js'
import { makeTempDir, removeDir } from '../../helpers/tmp.js'
import { backlog, fill, fillAtOnce, message, numbers, until, uplinkQueueContract } from './contract.js'

const dirs: string[] = []
async function tempDir(): Promise<string> {
  const dir = await makeTempDir('file-queue')
  dirs.push(dir)
  return join(dir, 'queue')
}
afterAll(async () => {
  for (const dir of dirs.splice(0)) await removeDir(dir)
})

const MiB = 1024 * 1024

uplinkQueueContract('FileQueue', async (capacity, deviceShare) => {
  const { queue } = await FileQueue.open(await tempDir(), {
    quotaBytes: 64 * MiB,
    segmentBytes: 16 * 1024,
    maxMessages: capacity,
    ...(deviceShare !== undefined && { deviceShare }),
  })
  return queue
})

uplinkQueueContract("FileQueue with durability 'write'", async (capacity, deviceShare) => {
  const { queue } = await FileQueue.open(await tempDir(), {
    quotaBytes: 64 * MiB,
    segmentBytes: 16 * 1024,
    maxMessages: capacity,
    durability: 'write',
    ...(deviceShare !== undefined && { deviceShare }),
  })
  return queue
})

uplinkQueueContract('FileQueue with 1 KiB segments', async (capacity, deviceShare) => {
  const { queue } = await FileQueue.open(await tempDir(), {
    quotaBytes: 64 * MiB,
    segmentBytes: 1024,
    maxMessages: capacity,
    ...(deviceShare !== undefined && { deviceShare }),
  })
  return queue
})

describe('FileQueue', () => {
  const open: FileQueue[] = []
  const subscriptions: Subscription[] = []
  async function openQueue(dir: string, options: Partial<FileQueueOptions> = {}) {
    const opened = await FileQueue.open(dir, { quotaBytes: 64 * MiB, segmentBytes: 4096, ...options })
    open.push(opened.queue)
    return opened
  }
  afterEach(async () => {
    for (const s of subscriptions.splice(0)) s.unsubscribe()
    for (const q of open.splice(0)) await q.close()
  })

  it('makes its folder 0700 and its files 0600', async () => {
    const dir = await tempDir()
    const { queue } = await openQueue(dir)
    const [entry] = await fill(queue, 1, 2)
    queue.ack(entry!.seq)
    await queue.close()
    expect((await stat(dir)).mode & 0o777).toBe(0o700)
    const names = await readdir(dir)
    expect(names.some((n) => n.endsWith('.ack'))).toBe(true)
    for (const name of names) expect((await stat(join(dir, name))).mode & 0o777).toBe(0o600)
  })

  it('reopened after close, replays the unacknowledged entries in order and numbers on from there', async () => {
    const dir = await tempDir()
    const first = (await openQueue(dir)).queue
    const entries = await fill(first, 1, 200)
    for (const e of entries) if (numbers([e])[0]! % 3 === 0) first.ack(e.seq)
    await first.close()

    const { queue, recovery } = await openQueue(dir)
    const held = entries.filter((e) => numbers([e])[0]! % 3 !== 0)
    expect(recovery).toMatchObject({
      records: 200,
      held: held.length,
      tornBytes: 0,
      corrupted: 0,
      details: [],
    })
    expect(queue.size).toBe(held.length)
    expect(await backlog(queue)).toEqual(held)
    expect(queue.stats().oldestReceivedAt).toBe(message(1).receivedAt)
    const next = (await queue.append(message(201)))!
    expect(next.seq).toBe(entries.at(-1)!.seq + 1)
  })

  it('keeps numbering upward when every record was acknowledged and its segments deleted', async () => {
    const dir = await tempDir()
    const first = (await openQueue(dir, { segmentBytes: 1024 })).queue
    const entries = await fill(first, 1, 100)
    for (const e of entries) first.ack(e.seq)
    expect(first.diagnostics().segments).toBe(1)
    await first.close()
    for (let round = 0; round < 3; round++) {
      const { queue, recovery } = await openQueue(dir)
      expect(recovery.held).toBe(0)
      expect(queue.size).toBe(0)
      await queue.close()
    }
    const { queue } = await openQueue(dir)
    expect((await queue.append(message(101)))!.seq).toBe(entries.at(-1)!.seq + 1)
    expect((await readdir(dir)).filter((n) => n.endsWith('.log'))).toHaveLength(1)
  })

  it('starts numbering at firstSeq when that is above the log, and ignores it when below', async () => {
    const dir = await tempDir()
    const first = (await openQueue(dir, { firstSeq: 1_000_000 })).queue
    expect((await first.append(message(1)))!.seq).toBe(1_000_000)
    await first.close()
    const second = (await openQueue(dir, { firstSeq: 5 })).queue
    expect((await second.append(message(2)))!.seq).toBe(1_000_001)
    await second.close()
    const { queue } = await openQueue(dir, { firstSeq: 2 ** 40 })
    expect(numbers(await backlog(queue))).toEqual([1, 2])
    expect((await queue.append(message(3)))!.seq).toBe(2 ** 40)
  })

  it('deletes a segment, records and acks, once all its records are acknowledged', async () => {
    const dir = await tempDir()
    const { queue } = await openQueue(dir, { segmentBytes: 1024 })
    const entries = await fillAtOnce(queue, 1, 300)
    const segments = queue.diagnostics().segments
    expect(segments).toBeGreaterThan(10)
    const bytes = queue.stats().bytes
    // Everything but the last 10: all segments but the last one or two go.
    for (const e of entries.slice(0, 290)) queue.ack(e.seq)
    expect(queue.diagnostics().segments).toBeLessThanOrEqual(2)
    expect(queue.stats().bytes).toBeLessThan(bytes / 5)
    await queue.close()
    expect((await readdir(dir)).filter((n) => n.endsWith('.log')).length).toBeLessThanOrEqual(2)
    const reopened = (await openQueue(dir)).queue
    expect(numbers(await backlog(reopened))).toEqual(numbers(entries.slice(290)))
  })

  it('writes appends issued while a sync is under way together: far fewer fsyncs than appends', async () => {
    const { queue } = await openQueue(await tempDir(), { segmentBytes: 1024 * 1024 })
    const before = queue.diagnostics()
    const entries = await fillAtOnce(queue, 1, 2000)
    const after = queue.diagnostics()
    expect(numbers(entries)).toEqual(Array.from({ length: 2000 }, (_, i) => i + 1))
    expect(after.commits - before.commits).toBeLessThanOrEqual(5)
    expect(after.fsyncs - before.fsyncs).toBeLessThanOrEqual(5)
    // One appender at a time: one commit each.
    await fill(queue, 2001, 2010)
    expect(queue.diagnostics().commits - after.commits).toBe(10)
  })

  it("with durability 'write', resolves appends without an fdatasync per commit; a reopen finds every record", async () => {
    const dir = await tempDir()
    const { queue } = await openQueue(dir, { segmentBytes: 1024 * 1024, durability: 'write' })
    const before = queue.diagnostics()
    const entries = await fill(queue, 1, 50)
    const after = queue.diagnostics()
    // One appender at a time: a commit each, and no fsync at all (the segment was synced when made).
    expect(after.commits - before.commits).toBe(50)
    expect(after.fsyncs - before.fsyncs).toBe(0)
    await queue.close()
    expect(numbers(await backlog((await openQueue(dir)).queue))).toEqual(numbers(entries))
  })

  it('refuses a durability it does not know', async () => {
    await expect(
      openQueue(await tempDir(), { durability: 'sometimes' as FileQueueOptions['durability'] }),
    ).rejects.toThrow(/durability.*'fsync' or 'write'/)
  })

  it('keeps a few bytes of index per held message, not its payload', async () => {
    const { queue } = await openQueue(await tempDir(), { segmentBytes: 1024 * 1024 })
    const appends: Promise<unknown>[] = []
    for (let n = 0; n < 20_000; n++)
      appends.push(queue.append({ ...message(n), payload: Buffer.alloc(64, n) }))
    await Promise.all(appends)
    // 10 bytes per held message (size, device, time), plus the spare room of the growing arrays.
    expect(queue.diagnostics().indexBytes / queue.size).toBeLessThan(20)
  })

  it('pauses a reader at the read-ahead window and goes on as entries are acknowledged', async () => {
    const { queue } = await openQueue(await tempDir(), { segmentBytes: 2048, readAhead: 10 })
    const entries = await fillAtOnce(queue, 1, 100)
    const seen: QueueEntry[] = []
    subscriptions.push(queue.read().subscribe((e) => seen.push(e)))
    await until(() => seen.length === 10, 'the first window')
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(seen.length).toBe(10)
    // Half the window acknowledged: it reads on up to a full window again.
    for (const e of seen.slice(0, 5)) queue.ack(e.seq)
    await until(() => seen.length === 15, 'the window refilled')
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(seen.length).toBe(15)
    // A consumer that acknowledges as it goes gets everything held, in order, and then the live entries.
    subscriptions.pop()!.unsubscribe()
    const acking: QueueEntry[] = []
    subscriptions.push(
      queue.read().subscribe((e) => {
        acking.push(e)
        queue.ack(e.seq)
      }),
    )
    const live = await fillAtOnce(queue, 101, 130)
    await until(() => acking.length === 125, 'all held entries')
    expect(acking).toEqual([...entries.slice(5), ...live])
    expect(queue.size).toBe(0)
  })

  it('pauses a live reader too, and reads what it missed from the disk', async () => {
    const { queue } = await openQueue(await tempDir(), { segmentBytes: 1024, readAhead: 8 })
    const seen: QueueEntry[] = []
    subscriptions.push(queue.read().subscribe((e) => seen.push(e)))
    await new Promise((resolve) => setTimeout(resolve, 10))
    const entries = await fillAtOnce(queue, 1, 200)
    await until(() => seen.length === 8, 'the first window')
    const acker = setInterval(() => {
      for (const e of seen) queue.ack(e.seq)
    }, 1)
    try {
      await until(() => seen.length === 200, 'all entries')
    } finally {
      clearInterval(acker)
    }
    expect(seen).toEqual(entries)
  })

  it("resumes a commit's appenders before its live readers see the entries (the LAN PUBACKs go out before the uplink's work)", async () => {
    const { queue } = await openQueue(await tempDir(), { durability: 'write' })
    const events: string[] = []
    subscriptions.push(queue.read().subscribe((e) => events.push(`read ${e.seq}`)))
    await new Promise((resolve) => setTimeout(resolve, 10))
    await Promise.all(
      [0, 1, 2].map((n) => queue.append(message(n)).then((e) => events.push(`resumed ${e?.seq}`))),
    )
    // The three appends went in one commit; the reader gets them in the event loop's next check phase.
    expect(events).toEqual(['resumed 1', 'resumed 2', 'resumed 3'])
    await new Promise((resolve) => setImmediate(resolve))
    expect(events).toEqual(['resumed 1', 'resumed 2', 'resumed 3', 'read 1', 'read 2', 'read 3'])
  })

  it('emits a large backlog in order from many segments, with the right payloads', async () => {
    const { queue } = await openQueue(await tempDir(), { segmentBytes: 64 * 1024 })
    const big = (n: number) => ({ ...message(n), payload: Buffer.alloc(20_000 + n, n % 251) })
    await Promise.all(Array.from({ length: 60 }, (_, n) => queue.append(big(n))))
    expect(queue.diagnostics().segments).toBeGreaterThan(10)
    const seen = await backlog(queue)
    expect(seen.map((e) => e.message)).toEqual(Array.from({ length: 60 }, (_, n) => big(n)))
  })

  it('takes a record larger than a segment into a segment of its own', async () => {
    const dir = await tempDir()
    const { queue } = await openQueue(dir, { segmentBytes: 1024 })
    const large = { ...message(2), payload: Buffer.alloc(5000, 7) }
    const entries = [
      (await queue.append(message(1)))!,
      (await queue.append(large))!,
      (await queue.append(message(3)))!,
    ]
    expect(await backlog(queue)).toEqual(entries)
    await queue.close()
    const reopened = (await openQueue(dir)).queue
    expect((await backlog(reopened)).map((e) => e.message)).toEqual([message(1), large, message(3)])
  })

  it('completes a reader that is reading the disk when the queue closes', async () => {
    const { queue } = await openQueue(await tempDir(), { readAhead: 5 })
    await fillAtOnce(queue, 1, 50)
    let completed = false
    let count = 0
    queue
      .read()
      .pipe(take(100))
      .subscribe({ next: () => count++, complete: () => (completed = true) })
    await until(() => count === 5, 'the window')
    await queue.close()
    expect(completed).toBe(true)
  })

  it('rejects the appends of a failed write with QUEUE_ERR_IO, holds none of them, and goes on', async () => {
    const dir = await tempDir()
    const { queue } = await openQueue(dir)
    const before = await fill(queue, 1, 3)
    // The queue writes a commit with writeAt (on the event loop's thread): its first call fails.
    const writable = queue as unknown as { writeAt: (buf: Buffer, position: number) => void }
    const writeAt = writable.writeAt.bind(queue)
    let failures = 1
    writable.writeAt = (buf, position) => {
      if (failures-- > 0) throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' })
      writeAt(buf, position)
    }
    const failed = await Promise.allSettled([4, 5, 6].map((n) => queue.append(message(n))))
    for (const result of failed) {
      expect(result).toMatchObject({ status: 'rejected', reason: { code: 'QUEUE_ERR_IO' } })
    }
    expect(queue.size).toBe(3)
    expect(queue.diagnostics().ioErrors).toBe(1)
    const after = await fill(queue, 7, 8)
    expect(after[0]!.seq).toBe(before[2]!.seq + 1)
    expect(await backlog(queue)).toEqual([...before, ...after])
    await queue.close()
    const reopened = await openQueue(dir)
    expect(reopened.recovery).toMatchObject({ corrupted: 0, tornBytes: 0 })
    expect(numbers(await backlog(reopened.queue))).toEqual([1, 2, 3, 7, 8])
  })

  it('a segment that could not be started is not tried again under the same id', async () => {
    const dir = await tempDir()
    const { queue } = await openQueue(dir)
    // In the way of the next segment, as a file left by a start that failed and could not be removed.
    await writeFile(join(dir, 'seg-000000000002.log'), 'left over')
    const appended: number[] = []
    let refused: number | undefined
    for (let n = 1; n <= 200 && refused === undefined; n++) {
      const entry = await queue.append(message(n)).catch((err: unknown) => {
        expect(err).toMatchObject({ code: 'QUEUE_ERR_IO', cause: { code: 'EEXIST' } })
        refused = n
      })
      if (entry) appended.push(n)
    }
    expect(refused).toBeDefined()
    await fill(queue, 1001, 1001)
    expect(queue.diagnostics().segments).toBe(2)
    expect(await readdir(dir)).toContain('seg-000000000003.log')
    expect(numbers(await backlog(queue))).toEqual([...appended, 1001])
  })

  it('rejects bad options with a code and the value', async () => {
    const dir = await tempDir()
    await expect(FileQueue.open(dir, { quotaBytes: -1 })).rejects.toMatchObject({
      code: 'QUEUE_ERR_OPTIONS',
      message: 'Expected the `quotaBytes` option to be an integer of at least 2048, got `-1` (number)',
    })
    await expect(FileQueue.open(dir, { quotaBytes: 10_000, segmentBytes: 8000 })).rejects.toMatchObject({
      code: 'QUEUE_ERR_OPTIONS',
    })
    await expect(FileQueue.open(dir, { quotaBytes: 10_000, qos0Fraction: 1.5 })).rejects.toMatchObject({
      code: 'QUEUE_ERR_OPTIONS',
    })
  })

  it('fails to open with QUEUE_ERR_IO when the folder cannot be made', async () => {
    const dir = await tempDir()
    await removeDir(dir)
    await writeFile(dir, 'not a folder')
    await expect(FileQueue.open(join(dir, 'q'), { quotaBytes: 1 * MiB })).rejects.toMatchObject({
      code: 'QUEUE_ERR_IO',
    })
  })
})
