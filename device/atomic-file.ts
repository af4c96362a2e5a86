import { open, rename } from 'node:fs/promises'
import { dirname } from 'node:path'

/**
 * Replace `path` with `data` so that a crash leaves either the old or the new
 * content, never a mix: write `path.tmp` (mode 0600), fsync it, rename it over
 * `path`, fsync the directory. Resolves once the new content is durable.
 */
export async function writeFileDurably(path: string, data: Buffer | string): Promise<void> {
  const tmp = `${path}.tmp`
  const file = await open(tmp, 'w', 0o600)
  try {
    await file.chmod(0o600)
    await file.writeFile(data)
    await file.sync()
  } finally {
    await file.close()
  }
  await rename(tmp, path)
  // Windows cannot open a directory for fsync; the rename is as durable as it gets there.
  if (process.platform === 'win32') return
  const dir = await open(dirname(path), 'r')
  try {
    await dir.sync()
  } finally {
    await dir.close()
  }
}
