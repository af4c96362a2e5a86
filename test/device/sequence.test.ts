import { mkdtempSync, readFileSync } from 'node:fs'
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { MAX_SEQ, SequenceCounter } from '../../device/sequence.js'

const storedEnd = (path: string) => Number(/v1 (\d+)\n$/.exec(readFileSync(path, 'utf8'))?.[1])

describe('SequenceCounter', () => {
  const dirs: string[] = []
  const tempPath = () => {
    const dir = mkdtempSync(join(tmpdir(), 'device-seq-'))
    dirs.push(dir)
    return join(dir, 'device', 'sequence')
  }
  afterEach(async () => {
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true })
  })

  it('starts at 0 and counts up by one, strictly increasing', async () => {
    const counter = await SequenceCounter.open(tempPath())
    const taken: number[] = []
    for (let i = 0; i < 100; i++) taken.push(await counter.next())
    expect(taken).toEqual(Array.from({ length: 100 }, (_, i) => i))
  })

  it('stores the end of each block of 32 before handing out any number of it', async () => {
    const path = tempPath()
    const counter = await SequenceCounter.open(path)
    const ends: number[] = []
    for (let i = 0; i < 70; i++) {
      const seq = await counter.next()
      const end = storedEnd(path)
      expect(end, `when ${seq} was handed out`).toBeGreaterThan(seq)
      ends.push(end)
    }
    expect([...new Set(ends)]).toEqual([32, 64, 96])
    expect(counter.reserved).toBe(96)
    expect(await readFile(path, 'utf8')).toBe('edge-gateway sequence v1 96\n')
  })

  it('writes its file with mode 0600', async () => {
    const path = tempPath()
    const counter = await SequenceCounter.open(path)
    await counter.next()
    expect((await stat(path)).mode & 0o777).toBe(0o600)
  })

  it('never reuses a number across crashes: each restart resumes at the stored block end', async () => {
    const path = tempPath()
    const taken: number[] = []
    for (const count of [5, 0, 32, 33, 1, 64, 7]) {
      // Open, take some, then drop the counter without closing anything (a crash).
      const counter = await SequenceCounter.open(path)
      for (let i = 0; i < count; i++) taken.push(await counter.next())
    }
    const last = await SequenceCounter.open(path)
    taken.push(await last.next())
    expect(taken.slice(0, 6)).toEqual([0, 1, 2, 3, 4, 32])
    for (let i = 1; i < taken.length; i++) expect(taken[i]!).toBeGreaterThan(taken[i - 1]!)
    expect(new Set(taken).size).toBe(taken.length)
  })

  it('serves concurrent calls in call order, with distinct numbers', async () => {
    const counter = await SequenceCounter.open(tempPath(), 8)
    const taken = await Promise.all(Array.from({ length: 100 }, () => counter.next()))
    expect(taken).toEqual(Array.from({ length: 100 }, (_, i) => i))
  })

  it('with a block size of 1 every number is stored before it is used', async () => {
    const path = tempPath()
    const counter = await SequenceCounter.open(path, 1)
    expect(await counter.next()).toBe(0)
    expect(storedEnd(path)).toBe(1)
    const again = await SequenceCounter.open(path, 1)
    expect(await again.next()).toBe(1)
  })

  it('a failed reservation hands out nothing; the next call retries', async () => {
    const path = tempPath()
    const counter = await SequenceCounter.open(path)
    await mkdir(`${path}.tmp`, { recursive: true }) // the temp file cannot be written
    await expect(counter.next()).rejects.toThrow()
    await rm(`${path}.tmp`, { recursive: true })
    expect(await counter.next()).toBe(0)
  })

  it('ends at 2^40 - 1 and then refuses', async () => {
    const path = tempPath()
    await mkdir(join(path, '..'), { recursive: true })
    await writeFile(path, `edge-gateway sequence v1 ${MAX_SEQ - 1}\n`)
    const counter = await SequenceCounter.open(path)
    expect(await counter.next()).toBe(MAX_SEQ - 1)
    expect(await counter.next()).toBe(MAX_SEQ)
    await expect(counter.next()).rejects.toMatchObject({ code: 'DEVICE_ERR_SEQUENCE_EXHAUSTED' })
    expect(storedEnd(path)).toBe(MAX_SEQ + 1)
    await expect((await SequenceCounter.open(path)).next()).rejects.toMatchObject({
      code: 'DEVICE_ERR_SEQUENCE_EXHAUSTED',
    })
  })

  it('refuses a file it cannot read: the safe next number is unknown', async () => {
    const path = tempPath()
    await mkdir(join(path, '..'), { recursive: true })
    for (const text of [
      '',
      'edge-gateway sequence v1 12',
      'edge-gateway sequence v1 -5\n',
      'edge-gateway sequence v1 1e9\n',
      `edge-gateway sequence v1 ${MAX_SEQ + 2}\n`,
      '{"next":5}',
    ]) {
      await writeFile(path, text)
      await expect(SequenceCounter.open(path), JSON.stringify(text)).rejects.toMatchObject({
        code: 'DEVICE_ERR_SEQUENCE_FILE',
      })
    }
    await rm(path)
    await mkdir(path)
    await expect(SequenceCounter.open(path)).rejects.toMatchObject({ code: 'DEVICE_ERR_SEQUENCE_FILE' })
  })

  it('refuses a bad block size', async () => {
    for (const size of [0, -1, 1.5, 2 ** 21]) {
      await expect(SequenceCounter.open(tempPath(), size)).rejects.toMatchObject({
        code: 'DEVICE_ERR_BAD_INPUT',
      })
    }
  })
})
