import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../../', import.meta.url))

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const entry of await readdir(join(root, dir), { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...(await sourceFiles(path)))
    else if (entry.name.endsWith('.ts')) out.push(path)
  }
  return out
}

describe('error codes', () => {
  it('every code declared in an errors.ts is documented in docs/security.md or docs/vpn.md', async () => {
    // VPN codes live in docs/vpn.md beside the tunnel's settings; every other code in docs/security.md.
    const docs =
      (await readFile(join(root, 'docs/security.md'), 'utf8')) +
      (await readFile(join(root, 'docs/vpn.md'), 'utf8'))
    const codes = new Set<string>()
    for (const dir of [
      'config',
      'gateway',
      'bridge',
      'pki',
      'policies',
      'crypto',
      'device',
      'vpn',
      'core',
      'cli',
    ]) {
      for (const file of await sourceFiles(dir)) {
        if (!/errors\.ts$/.test(file)) continue
        const text = await readFile(join(root, file), 'utf8')
        for (const m of text.matchAll(/'([A-Z]+_ERR_[A-Z0-9_]+)'/g)) codes.add(m[1]!)
      }
    }
    expect(codes.size).toBeGreaterThan(10)
    const missing = [...codes].filter((code) => !docs.includes(`\`${code}\``))
    expect(missing).toEqual([])
  })
})
