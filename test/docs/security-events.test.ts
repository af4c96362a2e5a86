import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { SECURITY_EVENT_NAMES } from '../../core/security-events.js'
import { repoRoot } from './fenced-blocks.js'

/** The names the code declares (core/security-events.ts). */
async function eventNames(): Promise<string[]> {
  return [...SECURITY_EVENT_NAMES]
}

/** The backticked names in the last column of the event table of docs/security.md. */
function tableEvents(doc: string): string[] {
  const rows = doc.split('\n').filter((line) => line.startsWith('| ') && line.trimEnd().endsWith('|'))
  const events: string[] = []
  for (const row of rows) {
    const cells = row.split(' | ')
    const last = cells[cells.length - 1]!.replace(/\s*\|\s*$/, '')
    const m = /^`([a-z]+(?:_[a-z]+)+)`/.exec(last)
    if (m && !/_ERR_/.test(last)) events.push(m[1]!)
  }
  return events
}

describe('security events', () => {
  it('every event name in core/security-events.ts is documented in docs/security.md', async () => {
    const doc = await readFile(join(repoRoot, 'docs/security.md'), 'utf8')
    const names = await eventNames()
    expect(names).toContain('auth_bad_token')
    expect(names.length).toBeGreaterThan(20)
    expect(names.filter((name) => !doc.includes(`\`${name}\``))).toEqual([])
  })

  it('every event in the table of docs/security.md is one the code reports', async () => {
    const doc = await readFile(join(repoRoot, 'docs/security.md'), 'utf8')
    const names = new Set(await eventNames())
    const documented = tableEvents(doc)
    expect(documented).toContain('auth_unknown_user')
    expect(documented.filter((name) => !names.has(name))).toEqual([])
  })
})
