import { execFile } from 'node:child_process'
import { findBinary } from './binaries.js'

export const MOSQUITTO_PASSWD_HINT = 'install it with `apt-get install mosquitto`'

/**
 * Runs the real `mosquitto_passwd` (argv, no shell, 10 s timeout). Passwords
 * go on argv (`-b`): fine for test passwords, never for real ones.
 */
export async function mosquittoPasswd(args: ReadonlyArray<string>): Promise<void> {
  const binary = await findBinary('mosquitto_passwd', MOSQUITTO_PASSWD_HINT)
  await new Promise<void>((resolve, reject) => {
    execFile(binary, [...args], { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err)
        reject(new Error(`mosquitto_passwd ${args[0] ?? ''} failed: ${err.message}\n${stdout}${stderr}`))
      else resolve()
    })
  })
}
