import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A fresh directory under the OS temp dir, mode 0700 (it will hold private keys). */
export async function makeTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix.endsWith('-') ? prefix : `${prefix}-`))
  await chmod(dir, 0o700)
  return dir
}

/** Removes `dir` and everything in it; a missing directory is fine. */
export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 3 })
}
