import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { FileQueue, type FileQueueOptions } from '../../../bridge/queue/file-queue.js'
import { defaultSegmentBytes, resolveOptions } from '../../../bridge/queue/options.js'
import { recordSize } from '../../../bridge/queue/record.js'
import { makeTempDir, removeDir } from '../../helpers/tmp.js'
import { backlog, fromDevice } from './contract.js'

const dirs: string[] = []
const queues: FileQueue[] = []
afterEach(async () => {
  for (const q of queues.splice(0)) await q.close()
})
afterAll(async () => {
  for (const d of dirs.splice(0)) await removeDir(d)
})

async function openQueue(dir: string, options: Partial<FileQueueOptions> = {}) {
  const opened = await FileQueue.open(dir, { quotaBytes: 1024 * 1024, segmentBytes: 4096, ...options })
  queues.push(opened.queue)
  return opened
}

async function tempDir(): Promise<string> {
  const dir = await makeTempDir('device-share')
  dirs.push(dir)
  return join(dir, 'queue')
}

describe('FileQueue: what each device holds', () => {
  it('is rebuilt at open from the records and their acknowledgements', async () => {
    const dir = await tempDir()
    const { queue } = await openQueue(dir)
    const entries = []
    for (let n = 1; n <= 60; n++) {
      const device = n % 3 === 0 ? 'quiet' : 'busy'
      entries.push((await queue.append(fromDevice(device, n)))!)
    }
    // Acknowledge every busy message below 30: 20 of its 40 stay, and all 20 of quiet's.
    for (const e of entries)
      if (e.message.deviceId === 'busy' && e.message.receivedAt % 1000 < 30) queue.ack(e.seq)
    const busy = queue.usage('busy')
    const quiet = queue.usage('quiet')
    expect(busy.messages).toBe(20)
    expect(quiet.messages).toBe(20)
    const held = await backlog(queue)
    const bytes = (device: string) =>
      held.filter((e) => e.message.deviceId === device).reduce((sum, e) => sum + recordSize(e.message), 0)
    expect(busy.bytes).toBe(bytes('busy'))
    expect(quiet.bytes).toBe(bytes('quiet'))
    await queue.close()

    const { queue: reopened, recovery } = await openQueue(dir)
    expect(recovery.held).toBe(40)
    expect(reopened.usage('busy')).toEqual(busy)
    expect(reopened.usage('quiet')).toEqual(quiet)
    expect(reopened.devices(5)).toEqual({
      holding: 2,
      top: [
        { device: 'quiet', ...quiet },
        { device: 'busy', ...busy },
      ].sort((a, b) => b.messages - a.messages || b.bytes - a.bytes),
    })
  })

  it('refuses, once half the quota is taken, the device whose records take a quarter of it', async () => {
    const dir = await tempDir()
    const quotaBytes = 64 * 1024
    const { queue } = await openQueue(dir, { quotaBytes, segmentBytes: 4096, deviceShare: 0.25 })
    const big = (device: string, n: number) => ({ ...fromDevice(device, n), payload: Buffer.alloc(1000, n) })
    // Alone, the flooder takes the free space up to half the quota.
    let n = 0
    while (queue.stats().bytes < quotaBytes / 2) expect(await queue.append(big('flood', ++n))).toBeDefined()
    expect(queue.usage('flood').bytes).toBeGreaterThan(quotaBytes / 4)
    const refused = await queue.tryAppend(big('flood', ++n))
    expect(refused).toEqual({ refused: 'qos1_device_quota', device: queue.usage('flood') })
    // Another device gets up to its own quarter.
    let other = 0
    while ('seq' in (await queue.tryAppend(big('other', ++n)))) other++
    expect(queue.usage('other').bytes).toBeLessThanOrEqual(quotaBytes / 4)
    expect(queue.usage('other').bytes + recordSize(big('other', n))).toBeGreaterThan(quotaBytes / 4)
    expect(other).toBe(queue.usage('other').messages)
    expect(queue.stats().dropped.qos1_device_quota).toBe(2)
    expect(queue.stats().bytes).toBeLessThanOrEqual(quotaBytes)
  })
})

describe('FileQueue segment size', () => {
  it('defaults to a sixteenth of the quota or of the disk, whichever is smaller, from 1 KiB to 16 MiB', () => {
    expect(defaultSegmentBytes(256 * 1024 * 1024)).toBe(16 * 1024 * 1024)
    expect(defaultSegmentBytes(256 * 1024 * 1024, 1024 * 1024)).toBe(64 * 1024)
    expect(defaultSegmentBytes(64 * 1024, 1024 * 1024 * 1024)).toBe(4096)
    expect(defaultSegmentBytes(1024 * 1024 * 1024 * 1024)).toBe(16 * 1024 * 1024)
    expect(defaultSegmentBytes(1024 * 1024, 4096)).toBe(1024)
    expect(resolveOptions({ quotaBytes: 256 * 1024 * 1024 }, 1024 * 1024).segmentBytes).toBe(64 * 1024)
    expect(resolveOptions({ quotaBytes: 256 * 1024 * 1024, segmentBytes: 8192 }, 1024).segmentBytes).toBe(
      8192,
    )
  })

  it('follows the filesystem the folder is on', async () => {
    const { queue } = await FileQueue.open(await tempDir(), { quotaBytes: 1024 * 1024 })
    queues.push(queue)
    // The test folder's filesystem is far larger than 16 times the quota.
    expect(queue.segmentBytes).toBe(64 * 1024)
  })

  it('rejects a device share out of (0, 1]', async () => {
    for (const deviceShare of [0, -0.5, 1.5, Number.NaN]) {
      await expect(
        FileQueue.open(await tempDir(), { quotaBytes: 65_536, deviceShare }),
      ).rejects.toMatchObject({
        code: 'QUEUE_ERR_OPTIONS',
        message: `Expected the \`deviceShare\` option to be a number in (0, 1], got \`${deviceShare}\` (number)`,
      })
    }
  })
})
