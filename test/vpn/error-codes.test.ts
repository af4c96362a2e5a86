import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { VPN_ERROR_CODES } from '../../vpn/errors.js'

describe('vpn error codes', () => {
  it('every code is documented in docs/vpn.md', async () => {
    const docs = await readFile(new URL('../../docs/vpn.md', import.meta.url), 'utf8')
    expect(VPN_ERROR_CODES.filter((code) => !docs.includes(`\`${code}\``))).toEqual([])
  })

  it('every code is in the list the type is made from', async () => {
    const dir = new URL('../../vpn/', import.meta.url)
    const { readdir } = await import('node:fs/promises')
    const used = new Set<string>()
    for (const name of await readdir(dir)) {
      const text = await readFile(new URL(name, dir), 'utf8')
      for (const m of text.matchAll(/'(VPN_ERR_[A-Z0-9_]+)'/g)) used.add(m[1]!)
    }
    expect([...used].filter((code) => !(VPN_ERROR_CODES as readonly string[]).includes(code))).toEqual([])
  })
})
