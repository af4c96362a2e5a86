import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { FileQueue } from '../../../bridge/queue/file-queue.js'
import type { QueueEntry } from '../../../bridge/queue/queue.js'
import { refusal } from '../../../bridge/queue/quota.js'
import { recordSize } from '../../../bridge/queue/record.js'
import type { UplinkMessage } from '../../../gateway/uplink.js'
import { makeTempDir, removeDir } from '../../helpers/tmp.js'
import { backlog, message } from './contract.js'

describe('refusal (the quota policy)', () => {
  const limits = { maxMessages: 100, quotaBytes: 1000, qos0Bytes: 900, deviceShare: 1 }
  const none = { messages: 0, bytes: 0 }

  it('accepts both QoS while the queue is below the QoS 0 mark', () => {
    expect(refusal(0, 100, 100, { messages: 5, bytes: 800 }, none, limits)).toBeUndefined()
    expect(refusal(1, 100, 100, { messages: 5, bytes: 800 }, none, limits)).toBeUndefined()
  })

  it('refuses QoS 0 first, above the QoS 0 mark, and QoS 1 only above the quota', () => {
    expect(refusal(0, 101, 101, { messages: 5, bytes: 800 }, none, limits)).toBe('qos0_quota')
    expect(refusal(1, 101, 101, { messages: 5, bytes: 800 }, none, limits)).toBeUndefined()
    expect(refusal(1, 200, 200, { messages: 5, bytes: 800 }, none, limits)).toBeUndefined()
    expect(refusal(1, 201, 201, { messages: 5, bytes: 800 }, none, limits)).toBe('qos1_quota')
  })

  it('refuses every append at the message bound, counted by QoS', () => {
    expect(refusal(0, 1, 1, { messages: 100, bytes: 0 }, none, limits)).toBe('qos0_capacity')
    expect(refusal(1, 1, 1, { messages: 100, bytes: 0 }, none, limits)).toBe('qos1_capacity')
  })
})

describe('refusal: a device over its share', () => {
  // A quarter: 25 messages, 250 bytes; the queue is under pressure from 50 messages or 500 bytes.
  const limits = { maxMessages: 100, quotaBytes: 1000, qos0Bytes: 900, deviceShare: 0.25 }

  it('lets one device use the free space while the queue is under half full', () => {
    expect(
      refusal(1, 10, 10, { messages: 49, bytes: 490 }, { messages: 49, bytes: 490 }, limits),
    ).toBeUndefined()
    expect(
      refusal(0, 10, 10, { messages: 49, bytes: 490 }, { messages: 49, bytes: 490 }, limits),
    ).toBeUndefined()
  })

  it('from half full, refuses the device holding its share of the messages, by QoS', () => {
    const queue = { messages: 50, bytes: 400 }
    expect(refusal(1, 1, 1, queue, { messages: 25, bytes: 25 }, limits)).toBe('qos1_device_quota')
    expect(refusal(0, 1, 1, queue, { messages: 25, bytes: 25 }, limits)).toBe('qos0_device_quota')
    expect(refusal(1, 1, 1, queue, { messages: 24, bytes: 24 }, limits)).toBeUndefined()
  })

  it('from half the bytes, refuses the device whose record would take it over its share of the bytes', () => {
    const queue = { messages: 10, bytes: 500 }
    expect(refusal(1, 51, 51, queue, { messages: 1, bytes: 200 }, limits)).toBe('qos1_device_quota')
    expect(refusal(1, 50, 50, queue, { messages: 1, bytes: 200 }, limits)).toBeUndefined()
  })

  it('refuses the device over its share before the queue is full, and the others only at the bounds', () => {
    const full = { messages: 100, bytes: 0 }
    expect(refusal(1, 1, 1, full, { messages: 60, bytes: 60 }, limits)).toBe('qos1_device_quota')
    expect(refusal(1, 1, 1, full, { messages: 2, bytes: 2 }, limits)).toBe('qos1_capacity')
    expect(refusal(1, 101, 101, { messages: 60, bytes: 900 }, { messages: 2, bytes: 2 }, limits)).toBe(
      'qos1_quota',
    )
  })

  it('a share of 1 is no per-device limit', () => {
    const all = { messages: 99, bytes: 900 }
    expect(refusal(1, 10, 10, all, all, { ...limits, deviceShare: 1 })).toBeUndefined()
    expect(refusal(1, 1, 1, { messages: 100, bytes: 0 }, all, { ...limits, deviceShare: 1 })).toBe(
      'qos1_capacity',
    )
  })
})

describe('FileQueue disk quota', () => {
  const dirs: string[] = []
  const queues: FileQueue[] = []
  afterEach(async () => {
    for (const q of queues.splice(0)) await q.close()
  })
  afterAll(async () => {
    for (const d of dirs.splice(0)) await removeDir(d)
  })

  const QUOTA = 16 * 1024
  async function openQueue(dir?: string) {
    let path = dir
    if (!path) {
      const base = await makeTempDir('queue-quota')
      dirs.push(base)
      path = join(base, 'q')
    }
    const opened = await FileQueue.open(path, { quotaBytes: QUOTA, segmentBytes: 1024 })
    queues.push(opened.queue)
    return { ...opened, dir: path }
  }
  const qos0 = (n: number): UplinkMessage => ({ ...message(n), qos: 0 })

  /** Appends `make(n)` one after another until the queue refuses one; returns the accepted entries. */
  async function appendUntilRefused(queue: FileQueue, make: (n: number) => UplinkMessage, from: number) {
    const entries: QueueEntry[] = []
    for (let n = from; n < from + 10_000; n++) {
      const entry = await queue.append(make(n))
      if (!entry) return entries
      entries.push(entry)
    }
    throw new Error('the quota never refused an append')
  }

  it('refuses QoS 0 above 90 % of the quota, then QoS 1 above 100 %, counting each; takes appends again once acks free segments', async () => {
    const { queue, dir } = await openQueue()
    const held = await appendUntilRefused(queue, qos0, 1)
    const afterQos0 = queue.stats()
    expect(afterQos0.dropped).toEqual({
      qos0_quota: 1,
      qos1_quota: 0,
      qos0_capacity: 0,
      qos1_capacity: 0,
      qos0_device_quota: 0,
      qos1_device_quota: 0,
    })
    expect(afterQos0.bytes).toBeLessThanOrEqual(QUOTA * 0.9)
    expect(afterQos0.bytes + recordSize(qos0(held.length + 1))).toBeGreaterThan(QUOTA * 0.9)

    // QoS 1 still goes in, up to the quota itself.
    const more = await appendUntilRefused(queue, message, 10_000)
    expect(more.length).toBeGreaterThan(10)
    held.push(...more)
    const full = queue.stats()
    expect(full.dropped).toMatchObject({ qos0_quota: 1, qos1_quota: 1 })
    expect(full.bytes).toBeLessThanOrEqual(QUOTA)
    expect(await queue.append(qos0(1))).toBeUndefined()
    expect(await queue.append(message(1))).toBeUndefined()
    expect(queue.stats().dropped).toMatchObject({ qos0_quota: 2, qos1_quota: 2 })
    // Nothing held was dropped to make room.
    expect(await backlog(queue)).toEqual(held)

    // Still full after a restart: the quota counts the files.
    await queue.close()
    const reopened = (await openQueue(dir)).queue
    expect(await reopened.append(message(2))).toBeUndefined()
    expect(reopened.stats().dropped.qos1_quota).toBe(1)

    // Acks of the oldest third free whole segments: appends are taken again.
    for (const e of held.slice(0, Math.floor(held.length / 3))) reopened.ack(e.seq)
    expect(reopened.stats().bytes).toBeLessThan(QUOTA * 0.9)
    expect(await reopened.append(message(3))).toBeDefined()
    // All acked: both again.
    for (const e of held) reopened.ack(e.seq)
    expect(reopened.stats().bytes).toBeLessThan(QUOTA / 4)
    expect(await reopened.append(qos0(4))).toBeDefined()
    expect(await reopened.append(message(5))).toBeDefined()
  })

  it('counts appends being written against the quota, so concurrent appends cannot overshoot it', async () => {
    const { queue } = await openQueue()
    const results = await Promise.all(Array.from({ length: 1000 }, (_, n) => queue.append(message(n))))
    const accepted = results.filter((e) => e !== undefined).length
    expect(accepted).toBeGreaterThan(100)
    expect(accepted).toBeLessThan(1000)
    expect(queue.stats().dropped.qos1_quota).toBe(1000 - accepted)
    expect(queue.stats().bytes).toBeLessThanOrEqual(QUOTA)
  })
})
