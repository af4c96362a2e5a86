import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/**
 * `<dir>/<name>`: a command nonce journal (bridge/command-nonces.ts, core/nonce-journal.ts: one
 * `nonce expiry` line each) holding `count` nonces that expire at `expiresAt` (ms), as a gateway
 * that accepted that many commands leaves it; for tests of the cap.
 */
export async function prefilledNonces(
  dir: string,
  name: string,
  count: number,
  expiresAt: number,
): Promise<string> {
  const file = join(dir, name)
  const lines: string[] = []
  for (let i = 0; i < count; i++) lines.push(`${i.toString(16).padStart(32, '0')} ${expiresAt}\n`)
  await writeFile(file, lines.join(''), { mode: 0o600 })
  return file
}
