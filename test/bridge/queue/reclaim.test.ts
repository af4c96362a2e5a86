import { mkdir, readdir, readlink, rmdir } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { FileQueue } from '../../../bridge/queue/file-queue.js'
import { SEGMENT_HEADER_BYTES, segmentFileName } from '../../../bridge/queue/segment.js'
import { createLogger } from '../../../core/logger.js'
import { makeTempDir, removeDir } from '../../helpers/tmp.js'
import { LogCapture } from '../../integration/harness.js'
import { backlog, fill, numbers, until } from './contract.js'

const dirs: string[] = []
const queues: FileQueue[] = []
afterEach(async () => {
  for (const q of queues.splice(0)) await q.close()
})
afterAll(async () => {
  for (const d of dirs.splice(0)) await removeDir(d)
})

const SEGMENT = 4096

async function openQueue(dir: string, logs = new LogCapture()) {
  const opened = await FileQueue.open(dir, {
    quotaBytes: 64 * 1024,
    segmentBytes: SEGMENT,
    logger: createLogger({ level: 'debug', destination: logs }),
  })
  queues.push(opened.queue)
  return opened.queue
}

async function tempDir(): Promise<string> {
  const dir = await makeTempDir('reclaim')
  dirs.push(dir)
  return join(dir, 'queue')
}

const logFiles = async (dir: string) => (await readdir(dir)).filter((f) => f.endsWith('.log')).sort()

/** The segment files once there is only one (the old one is deleted in the background); fails after 10 s. */
async function oneSegmentFile(dir: string): Promise<string> {
  const deadline = Date.now() + 10_000
  for (;;) {
    const files = await logFiles(dir)
    if (files.length === 1) return files[0]!
    if (Date.now() > deadline) throw new Error(`still ${files.join(', ')}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/**
 * Space comes back by whole segments; the active one is replaced once all of it is
 * acknowledged (from a quarter of a segment on), so a disk that filled up gets its
 * space back when the backlog drains even if no message comes after.
 */
describe('FileQueue: the acknowledged active segment', () => {
  it('is replaced by a fresh one once all of it is acknowledged, and its space comes back', async () => {
    const dir = await tempDir()
    const queue = await openQueue(dir)
    // 16 records of ~100 bytes: past a quarter of the segment, within one segment.
    const entries = await fill(queue, 1, 16)
    expect(queue.diagnostics().segments).toBe(1)
    const full = queue.stats().bytes
    expect(full - SEGMENT_HEADER_BYTES).toBeGreaterThanOrEqual(SEGMENT / 4)
    const [before] = await logFiles(dir)
    for (const e of entries) queue.ack(e.seq)
    await until(() => queue.diagnostics().reclaims === 1, 'the reclaim')
    expect(queue.stats().bytes).toBe(SEGMENT_HEADER_BYTES)
    expect(await oneSegmentFile(dir)).not.toBe(before)
    // It goes on numbering upward, and after a restart too.
    const [next] = await fill(queue, 17, 17)
    expect(next!.seq).toBe(entries.at(-1)!.seq + 1)
    await queue.close()
    const reopened = await openQueue(dir)
    const [after] = await fill(reopened, 18, 18)
    expect(after!.seq).toBeGreaterThan(next!.seq)
    expect(numbers(await backlog(reopened))).toEqual([17, 18])
  })

  it('is not held open by a reader that caught up: its space really comes back', async () => {
    const dir = await tempDir()
    const queue = await openQueue(dir)
    const entries = await fill(queue, 1, 16)
    // A reader that reads them from the disk and stays subscribed (live), as the cloud link does.
    const read: number[] = []
    const subscription = queue.read().subscribe((e) => read.push(e.seq))
    await until(() => read.length === entries.length, 'the reader caught up')
    for (const e of entries) queue.ack(e.seq)
    await until(() => queue.diagnostics().reclaims === 1, 'the reclaim')
    await oneSegmentFile(dir)
    const held: string[] = []
    for (const fd of await readdir('/proc/self/fd')) {
      const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '')
      if (target.startsWith(dir) && target.endsWith('(deleted)')) held.push(target)
    }
    expect(held).toEqual([])
    subscription.unsubscribe()
  })

  it('is kept while it is under a quarter of a segment, or holds a message', async () => {
    const dir = await tempDir()
    const queue = await openQueue(dir)
    const few = await fill(queue, 1, 2)
    for (const e of few) queue.ack(e.seq)
    const more = await fill(queue, 3, 20)
    for (const e of more.slice(1)) queue.ack(e.seq)
    await fill(queue, 21, 21)
    expect(queue.diagnostics().reclaims).toBe(0)
    expect(await logFiles(dir)).toHaveLength(1)
    expect(numbers(await backlog(queue))).toEqual([3, 21])
  })

  it('is tried again, with a log line, when the new segment cannot be made', async () => {
    const dir = await tempDir()
    const logs = new LogCapture()
    const queue = await openQueue(dir, logs)
    const entries = await fill(queue, 1, 16)
    const [active] = await logFiles(dir)
    const nextId = Number(active!.slice(4, 16)) + 1
    // A folder where the next segment file goes: making it fails with EEXIST.
    const obstacle = join(dir, segmentFileName(nextId))
    await mkdir(obstacle)
    for (const e of entries) queue.ack(e.seq)
    const line = await logs.waitFor((r) => r.work === 'segment_reclaim')
    expect(line).toMatchObject({ level: 40, code: 'EEXIST', retryInMs: 1000 })
    expect(line.msg).toBe(
      'queue segment not replaced (EEXIST): the acknowledged active segment keeps its space; trying again in 1000 ms',
    )
    expect(queue.diagnostics()).toMatchObject({ reclaims: 0, ioErrors: 1 })
    await rmdir(obstacle)
    await until(() => queue.diagnostics().reclaims === 1, 'the retried reclaim')
    expect(queue.stats().bytes).toBe(SEGMENT_HEADER_BYTES)
    expect(await oneSegmentFile(dir)).toBe(segmentFileName(nextId + 1))
  })
})
