import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url))

/** A fenced code block of a Markdown file. */
export interface FencedBlock {
  /** `README.md:55`: the file and the line of the opening fence. */
  where: string
  /** The info string's first word (`yaml`, `sh`), or '' for an untagged block. */
  lang: string
  /** The lines between the fences, without the indentation of the opening fence. */
  text: string
}

/** README.md and every Markdown file in docs/, in a stable order. */
export function documentationFiles(): string[] {
  const docs = readdirSync(join(repoRoot, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`)
  return ['README.md', ...docs]
}

const OPENING = /^(\s*)(`{3,}|~{3,})\s*([^\s`]*)/

/** Every fenced block (``` or ~~~, CommonMark §4.5) of one Markdown file. */
export function fencedBlocks(file: string): FencedBlock[] {
  const lines = readFileSync(join(repoRoot, file), 'utf8').split('\n')
  const blocks: FencedBlock[] = []
  let open: { line: number; indent: number; fence: string; lang: string; body: string[] } | undefined
  lines.forEach((line, i) => {
    if (!open) {
      const m = OPENING.exec(line)
      if (m) open = { line: i + 1, indent: m[1]!.length, fence: m[2]!, lang: m[3]!.toLowerCase(), body: [] }
      return
    }
    const trimmed = line.trim()
    if (trimmed.startsWith(open.fence) && /^(`+|~+)$/.test(trimmed) && trimmed[0] === open.fence[0]) {
      blocks.push({ where: `${file}:${open.line}`, lang: open.lang, text: `${open.body.join('\n')}\n` })
      open = undefined
      return
    }
    const indent = /^ */.exec(line)![0].length
    open.body.push(line.slice(Math.min(indent, open.indent)))
  })
  if (open) throw new Error(`${file}:${open.line}: a fenced block that is never closed`)
  return blocks
}
