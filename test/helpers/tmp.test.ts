import { stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { makeTempDir, removeDir } from './tmp.js'

describe('makeTempDir / removeDir', () => {
  it('makes a 0700 directory under the OS temp dir and removes it with its contents', async () => {
    const dir = await makeTempDir('helpers-tmp')
    expect(dir.startsWith(join(tmpdir(), 'helpers-tmp-'))).toBe(true)
    expect((await stat(dir)).mode & 0o777).toBe(0o700)
    await removeDir(dir)
    await expect(stat(dir)).rejects.toMatchObject({ code: 'ENOENT' })
    await removeDir(dir)
  })
})
