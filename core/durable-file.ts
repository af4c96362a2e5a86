import { type FileHandle, open, rename } from 'node:fs/promises'
import { dirname } from 'node:path'

/**
 * Replace `path` with `data` so that a crash or a power loss leaves either the
 * old or the new content, never a mix or nothing: write `path.tmp` (mode 0600),
 * fsync it, rename it over `path`, fsync the directory (without that, the
 * rename itself may not survive a power loss). Resolves once it is durable.
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
  await syncDirectory(dirname(path))
}

/** fsync a directory, so the names created or renamed in it are durable. */
export async function syncDirectory(dir: string): Promise<void> {
  // Windows cannot open a directory for fsync; a rename is as durable as it gets there.
  if (process.platform === 'win32') return
  let handle: FileHandle | undefined
  try {
    handle = await open(dir, 'r')
    await handle.sync()
  } finally {
    await handle?.close()
  }
}
