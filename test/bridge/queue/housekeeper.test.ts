import { mkdir, readdir, rename, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { FileQueue } from '../../../bridge/queue/file-queue.js'
import { LogLimiter } from '../../../core/log-limiter.js'
import { createLogger } from '../../../core/logger.js'
import { makeTempDir, removeDir } from '../../helpers/tmp.js'
import { LogCapture } from '../../integration/harness.js'
import { fill } from './contract.js'

const dirs: string[] = []
afterAll(async () => {
  for (const dir of dirs.splice(0)) await removeDir(dir)
})

/** A queue in a fresh folder with 1 KiB segments, logging into `logs`. */
async function openQueue(logs: LogCapture) {
  const dir = await makeTempDir('housekeeper')
  dirs.push(dir)
  const queueDir = join(dir, 'queue')
  const { queue } = await FileQueue.open(queueDir, {
    quotaBytes: 1024 * 1024,
    segmentBytes: 1024,
    ackFlushMs: 0,
    logger: createLogger({ level: 'debug', destination: logs }),
  })
  return { queue, queueDir }
}

/** The segment file names of the queue folder, oldest first. */
async function segmentFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => f.endsWith('.log')).sort()
}

describe('Housekeeper failures are logged, not only counted', () => {
  it('a segment that cannot be deleted is logged at warn with its path and errno; the file stays', async () => {
    const logs = new LogCapture()
    const { queue, queueDir } = await openQueue(logs)
    const entries = await fill(queue, 1, 40)
    const [first] = await segmentFiles(queueDir)
    // A folder where the segment file was: deleting it fails (rm without recursive).
    const path = join(queueDir, first!)
    await rename(path, `${path}.aside`)
    await mkdir(path)
    // Every record acknowledged: the full segments are deleted, all but this one.
    for (const e of entries) queue.ack(e.seq)
    await queue.close()
    expect(queue.diagnostics().ioErrors).toBe(1)
    const lines = logs.records.filter((r) => r.work === 'segment_delete')
    expect(lines).toEqual([
      expect.objectContaining({
        level: 40,
        path,
        code: 'ERR_FS_EISDIR',
        errno: 21,
        failures: 1,
        msg: `queue segment file not deleted (ERR_FS_EISDIR): ${path}; its space comes back only when the next start deletes it`,
      }),
    ])
    expect((await stat(path)).isDirectory()).toBe(true)
    expect((await segmentFiles(queueDir)).length).toBe(2)
  })

  it('an ack file that cannot be written is logged with its path and errno', async () => {
    const logs = new LogCapture()
    const { queue, queueDir } = await openQueue(logs)
    const [entry] = await fill(queue, 1, 3)
    const ackPath = join(queueDir, (await segmentFiles(queueDir)).at(-1)!.replace('.log', '.ack'))
    await mkdir(ackPath)
    queue.ack(entry!.seq)
    await queue.close()
    expect(logs.records.filter((r) => r.work === 'ack_write')).toEqual([
      expect.objectContaining({
        level: 40,
        path: ackPath,
        code: 'EISDIR',
        errno: -21,
        msg: `queue acknowledgements not written (EISDIR): ${ackPath}; those messages may be sent again after a restart`,
      }),
    ])
  })

  it('many failures in a burst: at most 10 lines, all counted', async () => {
    const logs = new LogCapture()
    const { queue, queueDir } = await openQueue(logs)
    const entries = await fill(queue, 1, 300)
    const files = await segmentFiles(queueDir)
    // Every segment but the active one becomes undeletable; then all their records are acknowledged.
    const undeletable = files.slice(0, -1)
    expect(undeletable.length).toBeGreaterThan(12)
    for (const f of undeletable) {
      await rename(join(queueDir, f), join(queueDir, `${f}.aside`))
      await mkdir(join(queueDir, f))
    }
    for (const e of entries) queue.ack(e.seq)
    await queue.close()
    expect(queue.diagnostics().ioErrors).toBe(undeletable.length)
    const lines = logs.records.filter((r) => r.work === 'segment_delete')
    expect(lines.map((r) => r.failures)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
  })
})

describe('LogLimiter', () => {
  it('writes `burst` lines per window, then counts; the next line written says how many were left out', () => {
    let now = 0
    const limiter = new LogLimiter(2, 1000, () => now)
    expect([limiter.take('a'), limiter.take('a'), limiter.take('a'), limiter.take('b')]).toEqual([
      { suppressed: 0 },
      { suppressed: 0 },
      undefined,
      { suppressed: 0 },
    ])
    expect(limiter.take('a')).toBeUndefined()
    now = 1000
    expect(limiter.take('a')).toEqual({ suppressed: 2 })
    expect(limiter.take('a')).toEqual({ suppressed: 0 })
  })

  it('tracks at most maxKeys keys: a new key past it forgets the oldest', () => {
    const limiter = new LogLimiter(1, 1000, () => 0, 3)
    for (const key of ['a', 'b', 'c', 'd']) expect(limiter.take(key)).toEqual({ suppressed: 0 })
    expect(limiter.size).toBe(3)
    // 'a' was forgotten: it gets a fresh window; 'd' is still limited.
    expect(limiter.take('a')).toEqual({ suppressed: 0 })
    expect(limiter.take('d')).toBeUndefined()
  })
})
