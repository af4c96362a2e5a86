import { randomBytes } from 'node:crypto'
import { chmod, mkdir, open, rename, rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { syncDirectory } from '../core/durable-file.js'
import { PkiError } from './errors.js'

/**
 * Writes a private key (or any secret) atomically with mode 0600: parent
 * directories are created 0700, the content goes to a temporary file in the same
 * directory, which is fsynced, chmodded (the umask cannot loosen or tighten it)
 * and renamed over `path`. An existing file is replaced, so it ends up 0600 too;
 * a symlink at `path` is replaced, not followed.
 */
export async function writeSecretFile(path: string, content: string | Buffer): Promise<void> {
  await writeAtomically(path, content, 0o600, 0o700)
}

/** Like `writeSecretFile` for certificates and other public material: mode 0644. */
export async function writePublicFile(path: string, content: string): Promise<void> {
  await writeAtomically(path, content, 0o644, 0o755)
}

/**
 * Replaces `path` atomically with `content` at `mode` (a temporary file in the same folder, fsynced,
 * renamed over it, and the folder fsynced); a missing folder is made with `dirMode`. The writers above, and anything that
 * must keep a file's own mode (a config rewritten in place).
 */
export async function writeAtomically(
  path: string,
  content: string | Buffer,
  mode: number,
  dirMode = 0o700,
): Promise<void> {
  const dir = dirname(path)
  const temp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`)
  try {
    await mkdir(dir, { recursive: true, mode: dirMode })
    const handle = await open(temp, 'wx', mode)
    try {
      await handle.writeFile(content)
      await handle.chmod(mode)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(temp, path)
    await chmod(path, mode)
    // Without it the rename may not survive a power loss: the old file (an old key beside a new
    // certificate, nonces already used) would be back.
    await syncDirectory(dir)
  } catch (cause) {
    await rm(temp, { force: true })
    throw new PkiError(
      'PKI_ERR_WRITE_FILE',
      `Could not write \`${path}\` (mode ${mode.toString(8)}): ${errorCode(cause)}`,
      {
        cause,
      },
    )
  }
}

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : err instanceof Error ? err.message : String(err)
}
