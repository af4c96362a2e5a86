import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MosquittoImportError } from '../../../policies/mosquitto/errors.js'
import { readMosquittoFile } from '../../../policies/mosquitto/read-file.js'
import { rejectionOf } from '../../helpers/catch.js'
import { makeTempDir, removeDir } from '../../helpers/tmp.js'

let dir: string

beforeAll(async () => {
  dir = await makeTempDir('mosq-read')
})

afterAll(async () => {
  await removeDir(dir)
})

describe('readMosquittoFile', () => {
  it('returns the bytes of a file within the limit', async () => {
    const path = join(dir, 'acl')
    await writeFile(path, 'topic read a\n')
    expect((await readMosquittoFile(path, 13)).toString()).toBe('topic read a\n')
  })

  it('refuses a file over the limit before reading it', async () => {
    const path = join(dir, 'big')
    await writeFile(path, 'x'.repeat(20))
    const err = await rejectionOf(readMosquittoFile(path, 19))
    expect(err).toBeInstanceOf(MosquittoImportError)
    expect(err).toMatchObject({
      code: 'MOSQ_ERR_INPUT_TOO_LARGE',
      message: `Expected ${JSON.stringify(path)} to be at most 19 bytes, got 20 bytes`,
    })
  })

  it('refuses a missing file and a directory with MOSQ_ERR_READ_FILE', async () => {
    const missing = join(dir, 'missing')
    expect(await rejectionOf(readMosquittoFile(missing))).toMatchObject({
      code: 'MOSQ_ERR_READ_FILE',
      message: `Cannot read ${JSON.stringify(missing)} (ENOENT)`,
    })
    expect(await rejectionOf(readMosquittoFile(dir))).toMatchObject({
      code: 'MOSQ_ERR_READ_FILE',
      message: `Expected ${JSON.stringify(dir)} to be a regular file`,
    })
  })
})
