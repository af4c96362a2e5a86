import { constants } from 'node:fs'
import { access } from 'node:fs/promises'
import { delimiter, join } from 'node:path'

/** Debian installs the broker in /usr/sbin, which a non-root PATH often lacks. */
const EXTRA_DIRS = ['/usr/sbin', '/usr/local/sbin', '/sbin']

export const MOSQUITTO_INSTALL_HINT = 'install it with `apt-get install mosquitto mosquitto-clients`'

/**
 * Absolute path of executable `name`, looked up in PATH and then the sbin
 * directories. Throws `<name> not found: <installHint>` when it is nowhere.
 */
export async function findBinary(name: string, installHint: string): Promise<string> {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...EXTRA_DIRS]
  for (const dir of dirs) {
    const candidate = join(dir, name)
    try {
      await access(candidate, constants.X_OK)
      return candidate
    } catch {
      // Not here; keep looking.
    }
  }
  throw new Error(`${name} not found: ${installHint}`)
}
