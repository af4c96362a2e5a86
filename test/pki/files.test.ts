import { mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writePublicFile, writeSecretFile } from '../../pki/files.js'
import { rejectionOf } from '../helpers/catch.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'

async function modeOf(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777
}

describe('writeSecretFile / writePublicFile', () => {
  let dir: string
  beforeAll(async () => {
    dir = await makeTempDir('pki-files-')
  })
  afterAll(async () => {
    await removeDir(dir)
  })

  it('writes a secret with mode 0600, creating parent directories 0700', async () => {
    const path = join(dir, 'a', 'b', 'key.pem')
    await writeSecretFile(path, 'secret\n')
    expect(await readFile(path, 'utf8')).toBe('secret\n')
    expect(await modeOf(path)).toBe(0o600)
    expect(await modeOf(join(dir, 'a'))).toBe(0o700)
    expect(await modeOf(join(dir, 'a', 'b'))).toBe(0o700)
  })

  it('writes a Buffer byte for byte', async () => {
    const path = join(dir, 'bytes.bin')
    await writeSecretFile(path, Buffer.from([0, 255, 10, 13]))
    expect(await readFile(path)).toEqual(Buffer.from([0, 255, 10, 13]))
  })

  it('replaces an existing world-readable file with a 0600 one', async () => {
    const path = join(dir, 'existing.key')
    await writeFile(path, 'old', { mode: 0o644 })
    await writeSecretFile(path, 'new')
    expect(await readFile(path, 'utf8')).toBe('new')
    expect(await modeOf(path)).toBe(0o600)
  })

  it('replaces a symlink instead of writing through it', async () => {
    const target = join(dir, 'symlink-target')
    const link = join(dir, 'link.key')
    await writeFile(target, 'untouched', { mode: 0o644 })
    await symlink(target, link)
    await writeSecretFile(link, 'secret')
    expect(await readFile(target, 'utf8')).toBe('untouched')
    expect(await readFile(link, 'utf8')).toBe('secret')
    expect((await stat(link)).isFile()).toBe(true)
  })

  it('writes public material with mode 0644', async () => {
    const path = join(dir, 'pub', 'ca.pem')
    await writePublicFile(path, 'cert\n')
    expect(await readFile(path, 'utf8')).toBe('cert\n')
    expect(await modeOf(path)).toBe(0o644)
  })

  it('leaves no temporary files behind', async () => {
    const sub = join(dir, 'clean')
    await writeSecretFile(join(sub, 'one'), '1')
    await writePublicFile(join(sub, 'two'), '2')
    expect((await readdir(sub)).sort()).toEqual(['one', 'two'])
  })

  it('fails with PKI_ERR_WRITE_FILE and cleans up when the path is a directory', async () => {
    const sub = join(dir, 'blocked')
    await mkdir(join(sub, 'target'), { recursive: true })
    const err = await rejectionOf(writeSecretFile(join(sub, 'target'), 'x'))
    expect(err).toMatchObject({
      name: 'PkiError',
      code: 'PKI_ERR_WRITE_FILE',
      message: `Could not write \`${join(sub, 'target')}\` (mode 600): EISDIR`,
    })
    expect(await readdir(sub)).toEqual(['target'])
  })
})
