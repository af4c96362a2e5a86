import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/**
 * `<dir>/<name>`: a command nonce file (bridge/command-nonces.ts) holding `count` nonces that expire
 * at `expiresAt` (ms), as a gateway that accepted that many commands leaves it; for tests of the cap.
 */
export async function prefilledNonces(
  dir: string,
  name: string,
  count: number,
  expiresAt: number,
): Promise<string> {
  const file = join(dir, name)
  const seen: Record<string, number> = {}
  for (let i = 0; i < count; i++) seen[i.toString(16).padStart(32, '0')] = expiresAt
  await writeFile(file, JSON.stringify(seen), { mode: 0o600 })
  return file
}
