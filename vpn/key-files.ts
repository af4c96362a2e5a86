import { randomBytes } from 'node:crypto'
import { chmod, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { VpnError } from './errors.js'
import { SecretKey } from './secret.js'

/**
 * Reads a private or preshared key file: it must exist, be mode 0600 or tighter (not readable or
 * writable by group or others) and hold one WireGuard key.
 */
export async function readKeyFile(path: string, what = 'private key'): Promise<SecretKey> {
  let mode: number
  try {
    mode = (await stat(path)).mode & 0o777
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new VpnError(
        'VPN_ERR_KEY_FILE_MISSING',
        `The ${what} file ${path} does not exist; create it with \`edge-gateway vpn keys\``,
        { cause: err },
      )
    }
    throw err
  }
  if ((mode & 0o077) !== 0) {
    throw new VpnError(
      'VPN_ERR_KEY_FILE_MODE',
      `The ${what} file ${path} has mode 0${mode.toString(8)}; expected 0600 or tighter (chmod 600 ${path})`,
    )
  }
  const text = (await readFile(path, 'utf8')).trim()
  try {
    return new SecretKey(text, `${what} in ${path}`)
  } catch (err) {
    throw new VpnError(
      'VPN_ERR_BAD_KEY',
      `The ${what} file ${path} does not hold a WireGuard key (one line of 44 characters of base64)`,
      { cause: err instanceof VpnError ? undefined : err },
    )
  }
}

/**
 * Writes `key` to `path` with mode 0600 (the folder is created 0700 if missing). Without
 * `overwrite` an existing file is an error; with it, the file is replaced atomically.
 */
export async function writeKeyFile(
  path: string,
  key: SecretKey,
  options: { overwrite?: boolean } = {},
): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 })
  const target = options.overwrite ? join(dirname(path), `.${randomBytes(6).toString('hex')}.tmp`) : path
  const handle = await open(target, 'wx', 0o600)
  try {
    await handle.writeFile(`${key.reveal()}\n`)
    await handle.sync()
  } catch (err) {
    await handle.close()
    await rm(target, { force: true })
    throw err
  }
  await handle.close()
  // The umask cannot widen 0600, but an inherited ACL or a odd filesystem might: make sure.
  await chmod(target, 0o600)
  if (target !== path) await rename(target, path)
}
