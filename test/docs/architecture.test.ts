import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { documentationFiles, repoRoot } from './fenced-blocks.js'

interface Layer {
  folder: string
  allowed: Set<string>
  /** Folders it may import types from only (`import type`). */
  typesOnly: Set<string>
}

/** The module table of docs/architecture.md: folder, what it does, what it imports from. */
function documentedLayers(): Layer[] {
  const doc = readFileSync(join(repoRoot, 'docs/architecture.md'), 'utf8')
  const layers: Layer[] = []
  for (const line of doc.split('\n')) {
    const m = /^\| `([a-z]+)\/` \| .* \| ([^|]+) \|$/.exec(line)
    if (!m) continue
    const allowed = new Set<string>()
    const typesOnly = new Set<string>()
    for (const part of m[2]!.split(/,\s*/)) {
      const dep = /`([a-z]+)\/`/.exec(part)?.[1]
      if (!dep) continue
      allowed.add(dep)
      if (part.includes('(types only)')) typesOnly.add(dep)
    }
    layers.push({ folder: m[1]!, allowed, typesOnly })
  }
  return layers
}

function sourceFiles(dir: string): string[] {
  return readdirSync(join(repoRoot, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return sourceFiles(path)
    return entry.name.endsWith('.ts') ? [path] : []
  })
}

/** Imports of `file` that leave its top-level folder: the folder they reach, and whether they are type-only. */
function crossingImports(file: string): Array<{ to: string; typeOnly: boolean; line: string }> {
  const own = file.split('/')[0]!
  const text = readFileSync(join(repoRoot, file), 'utf8')
  const out: Array<{ to: string; typeOnly: boolean; line: string }> = []
  for (const m of text.matchAll(/^(import|export)(\s+type)?\s[^']*?from '(\.[^']+)'/gm)) {
    const target = relative(repoRoot, resolve(dirname(join(repoRoot, file)), m[3]!))
    const to = target.split('/')[0]!
    if (to !== own) out.push({ to, typeOnly: m[2] !== undefined, line: m[0].split('\n')[0]! })
  }
  return out
}

describe('docs/architecture.md', () => {
  const layers = documentedLayers()

  it('lists every source folder of the TypeScript build', () => {
    const tsconfig = JSON.parse(readFileSync(join(repoRoot, 'tsconfig.build.json'), 'utf8')) as {
      include?: string[]
    }
    const folders = (tsconfig.include ?? []).map((p) => p.split('/')[0]!).filter((p) => !p.includes('.'))
    expect(folders.length).toBeGreaterThan(5)
    expect(layers.map((l) => l.folder).sort()).toEqual([...new Set(folders)].sort())
  })

  it('every import between folders goes the documented way', () => {
    const problems: string[] = []
    let crossings = 0
    for (const layer of layers) {
      for (const file of sourceFiles(layer.folder)) {
        for (const dep of crossingImports(file)) {
          crossings++
          if (!layer.allowed.has(dep.to)) problems.push(`${file}: ${dep.line}`)
          else if (layer.typesOnly.has(dep.to) && !dep.typeOnly)
            problems.push(`${file} (types only): ${dep.line}`)
        }
      }
    }
    expect(crossings).toBeGreaterThan(100)
    expect(problems).toEqual([])
  })

  it('no document points outside the repository, and every relative link resolves', () => {
    const problems: string[] = []
    for (const file of documentationFiles()) {
      const text = readFileSync(join(repoRoot, file), 'utf8')
      if (text.includes('../shared')) problems.push(`${file}: mentions ../shared`)
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const link = m[1]!
        if (/^[a-z]+:/.test(link) || link.startsWith('#')) continue
        const target = resolve(dirname(join(repoRoot, file)), link.split('#')[0]!)
        const inside = relative(repoRoot, target)
        if (inside.startsWith('..')) problems.push(`${file}: ${link} leaves the repository`)
        else if (!existsSync(target)) problems.push(`${file}: ${link} does not exist`)
      }
    }
    expect(problems).toEqual([])
  })
})
