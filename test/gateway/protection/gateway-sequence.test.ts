import { mkdir, readFile, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { GatewaySequence } from '../../../gateway/protection/gateway-sequence.js'
import { makeTempDir, removeDir } from '../../helpers/tmp.js'

let dir: string
let n = 0
const fresh = () => join(dir, `seq-${++n}`, 'gateway-sequence')

beforeAll(async () => {
  dir = await makeTempDir('edge-gw-gateway-seq-')
})

afterAll(async () => {
  await removeDir(dir)
})

const errors = () => {
  const lines: Array<{ fields: Record<string, unknown>; message: string }> = []
  return {
    lines,
    logger: { error: (fields: Record<string, unknown>, message: string) => lines.push({ fields, message }) },
  }
}

describe('GatewaySequence', () => {
  it('reserves a block durably (0600) before handing out any number of it', async () => {
    const file = fresh()
    const seq = await GatewaySequence.open(file, { block: 8 })
    expect(await readFile(file, 'utf8')).toBe('8\n')
    expect((await stat(file)).mode & 0o777).toBe(0o600)
    expect([seq.take(), seq.take(), seq.take()]).toEqual([0, 1, 2])
  })

  it('never gives a number twice across a restart (a crash loses the rest of the block, not uniqueness)', async () => {
    const file = fresh()
    const first = await GatewaySequence.open(file, { block: 8 })
    const used = [first.take(), first.take()]
    // No close: a crash. The next start begins at the stored bound.
    const second = await GatewaySequence.open(file, { block: 8 })
    const next = second.take()!
    expect(next).toBe(8)
    expect(used.every((u) => u! < next)).toBe(true)
    expect(await readFile(file, 'utf8')).toBe('16\n')
  })

  it('reserves the next block in the background when half of this one is used', async () => {
    const file = fresh()
    const seq = await GatewaySequence.open(file, { block: 8 })
    for (let i = 0; i < 4; i++) seq.take()
    await seq.settled()
    expect(await readFile(file, 'utf8')).toBe('16\n')
    expect(seq.available).toBe(12)
    const taken = Array.from({ length: 12 }, () => seq.take())
    expect(taken).toEqual([4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15])
  })

  it('answers undefined, never throws, while no block can be written; and recovers', async () => {
    const file = fresh()
    const log = errors()
    const seq = await GatewaySequence.open(file, { block: 4, logger: log.logger })
    // The temp file's path becomes a directory: every reservation write fails (EISDIR), even as root.
    await mkdir(`${file}.tmp`)
    const taken: Array<number | undefined> = []
    for (let i = 0; i < 6; i++) taken.push(seq.take())
    await seq.settled()
    expect(taken).toEqual([0, 1, 2, 3, undefined, undefined])
    expect(seq.failedReservations).toBe(1)
    expect(log.lines).toEqual([
      expect.objectContaining({
        message:
          'cannot reserve gateway sequence numbers: sealed and MAC deliveries are withheld until it works',
        fields: expect.objectContaining({ file, err: expect.stringContaining('EISDIR') }),
      }),
    ])
    // Retried at most once a second, not on every delivery.
    expect(seq.take()).toBeUndefined()
    await seq.settled()
    expect(seq.failedReservations).toBe(1)
    await rm(`${file}.tmp`, { recursive: true })
    await new Promise((r) => setTimeout(r, 1100))
    expect(seq.take()).toBeUndefined()
    await seq.settled()
    expect(seq.take()).toBe(4)
    expect(await readFile(file, 'utf8')).toBe('8\n')
  })

  it('refuses to start on a file that is not a number', async () => {
    const file = fresh()
    await mkdir(join(file, '..'), { recursive: true })
    const { writeFile } = await import('node:fs/promises')
    await writeFile(file, 'garbage\n')
    await expect(GatewaySequence.open(file)).rejects.toThrow('not a sequence number; refusing to guess one')
  })
})
