/**
 * The consumer group's Redis state (bridge/group-store.ts) against a real redis-server on a
 * loopback port: the gw-seq window (new, seen, older than the window; jumps; out of order), the
 * stream delivery that writes and records in one step, and key bindings kept for other members.
 */
import type { ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startRedis } from '../../bench/lib/fleet.mjs'
import { GroupStore, SeqState } from '../../bridge/group-store.js'
import { findBinary } from '../helpers/binaries.js'
import { freePort } from '../helpers/ports.js'
import { terminate } from '../helpers/processes.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'

const WINDOW = 1024
const KID = '0123456789abcdef'
const src = (gatewayId: string, kid = KID) => ({ gatewayId, kid })

describe('GroupStore (Redis)', () => {
  let dir: string
  let port: number
  let redisChild: ChildProcess
  let store: GroupStore
  let raw: Redis
  let prefixNo = 0
  const fresh = async (window = WINDOW) => {
    prefixNo++
    const s = new GroupStore({ host: '127.0.0.1', port, db: 0, keyPrefix: `t${prefixNo}:`, window })
    await s.open()
    return s
  }

  beforeAll(async () => {
    await findBinary('redis-server', 'apt-get install redis-server')
    dir = await makeTempDir('eg-redis-')
    port = await freePort()
    redisChild = await startRedis({ dir: join(dir, 'redis'), port })
    raw = new Redis({ host: '127.0.0.1', port, lazyConnect: true })
    await raw.connect()
  })

  afterAll(async () => {
    await store?.close()
    raw?.disconnect()
    if (redisChild) await terminate(redisChild)
    if (dir) await removeDir(dir)
  })

  it('knows a gw-seq once it is recorded, per gateway', async () => {
    store = await fresh()
    expect(await store.seqState(src('gw-a'), 5)).toBe(SeqState.new)
    expect(await store.recordSeq(src('gw-a'), 5)).toBe(SeqState.new)
    expect(await store.seqState(src('gw-a'), 5)).toBe(SeqState.seen)
    expect(await store.recordSeq(src('gw-a'), 5)).toBe(SeqState.seen)
    expect(await store.seqState(src('gw-b'), 5)).toBe(SeqState.new)
    // The same gateway with another signing key (its state wiped, a new key made): a new sequence.
    expect(await store.seqState(src('gw-a', 'fedcba9876543210'), 5)).toBe(SeqState.new)
    // Out of order below the highest, inside the window: new until recorded.
    expect(await store.seqState(src('gw-a'), 3)).toBe(SeqState.new)
    await store.recordSeq(src('gw-a'), 3)
    expect(await store.seqState(src('gw-a'), 3)).toBe(SeqState.seen)
    expect(await store.seqState(src('gw-a'), 4)).toBe(SeqState.new)
    await store.close()
  })

  it('takes a gw-seq at or below highest - window as delivered, and reuses the ring correctly after jumps', async () => {
    store = await fresh()
    await store.recordSeq(src('gw'), 10)
    await store.recordSeq(src('gw'), 10 + WINDOW)
    expect(await store.seqState(src('gw'), 10)).toBe(SeqState.beforeWindow)
    expect(await store.seqState(src('gw'), 11)).toBe(SeqState.new)
    // The slot of 11 + WINDOW is the slot of 11: recording the later one must not mark the earlier.
    await store.recordSeq(src('gw'), 11 + WINDOW)
    expect(await store.seqState(src('gw'), 11)).toBe(SeqState.beforeWindow)
    expect(await store.seqState(src('gw'), 12)).toBe(SeqState.new)
    expect(await store.seqState(src('gw'), 11 + WINDOW)).toBe(SeqState.seen)
    // A jump of less than the window clears the slots it skips (they held seqs now out of the window).
    await store.recordSeq(src('gw'), 20 + WINDOW)
    for (let s = 12 + WINDOW; s < 20 + WINDOW; s++)
      expect(await store.seqState(src('gw'), s)).toBe(SeqState.new)
    await store.recordSeq(src('gw'), 15 + WINDOW)
    expect(await store.seqState(src('gw'), 15 + WINDOW)).toBe(SeqState.seen)
    // A jump of more than the window starts the ring again.
    await store.recordSeq(src('gw'), 100 + 3 * WINDOW)
    expect(await store.seqState(src('gw'), 99 + 3 * WINDOW)).toBe(SeqState.new)
    expect(await store.seqState(src('gw'), 100 + 2 * WINDOW)).toBe(SeqState.beforeWindow)
    expect(await store.seqState(src('gw'), 100 + 3 * WINDOW)).toBe(SeqState.seen)
    // What it costs: the ring is window / 8 bytes.
    expect(Number(await raw.strlen(`t${prefixNo}:seq:{gw}:${KID}:bits`))).toBeLessThanOrEqual(WINDOW / 8)
    await store.close()
  })

  it('adds a stream entry and records its gw-seq in one step; a duplicate is added flagged or not at all', async () => {
    store = await fresh()
    const fields = (n: string): Array<[string, string | Buffer]> => [
      ['gateway', 'gw'],
      ['payload', Buffer.from([0, 255, n.charCodeAt(0)])],
    ]
    expect(await store.deliverToStream('out', src('gw'), 1, fields('a'), false)).toBe(SeqState.new)
    expect(await store.deliverToStream('out', src('gw'), 1, fields('a'), false)).toBe(SeqState.seen)
    expect(await store.deliverToStream('out', src('gw'), 1, fields('a'), true)).toBe(SeqState.seen)
    expect(await store.deliverToStream('out', src('gw'), 2, fields('b'), true)).toBe(SeqState.new)
    const entries = (await raw.xrangeBuffer('out', '-', '+')) as Array<[Buffer, Buffer[]]>
    const read = entries.map(([, f]) => f.map((x) => x.toString('latin1')))
    expect(read).toEqual([
      ['gateway', 'gw', 'payload', '\u0000\u00ffa'],
      ['duplicate', '1', 'gateway', 'gw', 'payload', '\u0000\u00ffa'],
      ['gateway', 'gw', 'payload', '\u0000\u00ffb'],
    ])
    expect(await store.seqState(src('gw'), 2)).toBe(SeqState.seen)
    await store.close()
  })

  it('keeps key bindings as bytes for the other members', async () => {
    store = await fresh()
    expect(await store.loadBinding('00')).toBeNull()
    const bytes = Buffer.from([0x82, 0x40, 0x40, 0, 255])
    await store.saveBinding('abcd', bytes)
    expect(await store.loadBinding('abcd')).toEqual(bytes)
    await store.close()
  })

  it('refuses a gateway id that could not come from a certificate', async () => {
    store = await fresh()
    await expect(store.seqState(src(''), 1)).rejects.toThrow(RangeError)
    await expect(store.seqState(src('gw', 'not hex'), 1)).rejects.toThrow(RangeError)
    await expect(store.seqState(src('x'.repeat(257)), 1)).rejects.toThrow(RangeError)
    await store.close()
  })
})
