import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { compiledCli } from '../cli/run-cli.js'
import { exitOf } from '../helpers/processes.js'
import { straceCommand } from '../helpers/strace.js'
import { parseStrace } from '../helpers/strace-trace.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'

/**
 * pki/files.ts: a key, a certificate, a nonce store or a trust bundle replaced by rename is durable
 * only once its folder is fsynced too; without that a power loss can bring the old file back. Seen
 * in the system calls of a real write (strace), as the gateway makes it.
 */
describe('writeSecretFile / writePublicFile, in the system calls', () => {
  let dir: string
  beforeAll(async () => {
    dir = await makeTempDir('pki-durable-')
  })
  afterAll(async () => {
    await removeDir(dir)
  })

  it('fsyncs the file, renames it into place, then fsyncs the folder', async () => {
    const files = join(compiledCli(), '..', '..', 'pki', 'files.js')
    const target = join(dir, 'keys', 'gateway.key')
    const cert = join(dir, 'certs', 'gateway.pem')
    const trace = join(dir, 'trace')
    const script = `import { writeSecretFile, writePublicFile } from ${JSON.stringify(files)}
await writeSecretFile(${JSON.stringify(target)}, 'secret')
await writePublicFile(${JSON.stringify(cert)}, 'public')`
    const child = await straceCommand(
      ['-f', '-tt', '-yy', '-s', '256', '-e', 'trace=rename,renameat,renameat2,fsync,fdatasync', '-o', trace],
      [process.execPath, '--input-type=module', '-e', script],
    )
    expect(await exitOf(child)).toMatchObject({ code: 0 })
    const calls = parseStrace(await readFile(trace, 'utf8'))
    for (const path of [target, cert]) {
      const folder = join(path, '..')
      const renamed = calls.findIndex(
        (c) => c.name.startsWith('rename') && c.lines.join('').includes(`"${path}"`),
      )
      expect(renamed, `a rename onto ${path}`).toBeGreaterThanOrEqual(0)
      const before = calls.slice(0, renamed)
      expect(
        before.some(
          (c) => c.name === 'fsync' && c.fdPath?.startsWith(join(folder, `.${path.split('/').pop()}.`)),
        ),
        `the temporary file of ${path} fsynced before the rename`,
      ).toBe(true)
      const after = calls.slice(renamed + 1)
      expect(
        after.some((c) => (c.name === 'fsync' || c.name === 'fdatasync') && c.fdPath === folder),
        `${folder} fsynced after the rename`,
      ).toBe(true)
    }
  })
})
