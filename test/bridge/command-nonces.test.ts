import { randomBytes } from 'node:crypto'
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CommandNonces, MAX_REMEMBERED_NONCES } from '../../bridge/command-nonces.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'

/** docs/cloud-envelope.md, step 5: nonces of accepted cloud commands, kept across restarts. */
describe('command nonces', () => {
  let dir: string
  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-nonces-')
  })
  afterAll(async () => {
    await removeDir(dir)
  })

  it('remembers a nonce until it expires, across a reopen', async () => {
    const file = join(dir, 'reopen')
    const nonces = await CommandNonces.open(file)
    const n = randomBytes(16)
    expect(await nonces.remember(n, 2_000, 1_000)).toBe('fresh')
    expect(await nonces.remember(n, 2_000, 1_500)).toBe('replayed')
    await nonces.close()
    const reopened = await CommandNonces.open(file, { now: () => 1_600 })
    expect(await reopened.remember(n, 2_000, 1_600)).toBe('replayed')
    // Past its expiry it is forgotten (the freshness check refuses such a command anyway).
    expect(await reopened.remember(n, 10_000, 2_001)).toBe('fresh')
    await reopened.close()
    expect((await stat(file)).mode & 0o777).toBe(0o600)
  })

  it('appends one line per command: the nonces already held are not written again', async () => {
    const file = join(dir, 'append')
    // 5,000 held: each command used to rewrite all of them (and build the whole file in memory).
    const held = Object.fromEntries(
      Array.from({ length: 5_000 }, () => [randomBytes(16).toString('hex'), 9e12]),
    )
    await writeFile(`${file}.json`, JSON.stringify(held), { mode: 0o600 })
    const nonces = await CommandNonces.open(file)
    expect(nonces.size).toBe(5_000)
    const before = (await stat(file)).size
    for (let i = 0; i < 10; i++) expect(await nonces.remember(randomBytes(16), 9e12)).toBe('fresh')
    const grown = (await stat(file)).size - before
    expect(grown).toBe(10 * (32 + 1 + 13 + 1))
    await nonces.close()
  })

  it('takes over the JSON file of an earlier version, then removes it', async () => {
    const file = join(dir, 'legacy')
    const seen = randomBytes(16)
    await writeFile(`${file}.json`, JSON.stringify({ [seen.toString('hex')]: 9e12 }), { mode: 0o600 })
    const nonces = await CommandNonces.open(file)
    expect(await nonces.remember(seen, 9e12)).toBe('replayed')
    await expect(stat(`${file}.json`)).rejects.toMatchObject({ code: 'ENOENT' })
    await nonces.close()
    // Still there after the next start, from the journal alone.
    const again = await CommandNonces.open(file)
    expect(await again.remember(seen, 9e12)).toBe('replayed')
    await again.close()
    expect(await readFile(file, 'utf8')).toContain(seen.toString('hex'))
  })

  it('refuses to open a store that is there but cannot be read, instead of starting empty', async () => {
    // An earlier version's file cut short (a kill mid-write of an editor, a full disk): the nonces it
    // held would all be forgotten, and the commands they were for replayable.
    const cut = join(dir, 'cut')
    const json = JSON.stringify({ [randomBytes(16).toString('hex')]: 9e12 })
    await writeFile(`${cut}.json`, json.slice(0, -1), { mode: 0o600 })
    await expect(CommandNonces.open(cut)).rejects.toMatchObject({
      code: 'BRIDGE_ERR_NONCES',
      message: expect.stringContaining('not JSON'),
    })
    expect(await readFile(`${cut}.json`, 'utf8')).toBe(json.slice(0, -1))
    const notObject = join(dir, 'array')
    await writeFile(`${notObject}.json`, '[]', { mode: 0o600 })
    await expect(CommandNonces.open(notObject)).rejects.toMatchObject({ code: 'BRIDGE_ERR_NONCES' })
    // The journal itself unreadable (here a folder in its place).
    const folder = join(dir, 'folder')
    await mkdir(folder)
    await expect(CommandNonces.open(folder)).rejects.toMatchObject({
      code: 'BRIDGE_ERR_NONCES',
      message: expect.stringContaining('EISDIR'),
    })
  })

  it('is bounded', () => {
    expect(MAX_REMEMBERED_NONCES).toBe(100_000)
  })
})
