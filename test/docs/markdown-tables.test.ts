import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { documentationFiles, repoRoot } from './fenced-blocks.js'

const isRow = (line: string | undefined) => line?.startsWith('|') === true
const isSeparator = (line: string | undefined) => line !== undefined && /^\|(\s*:?-+:?\s*\|)+\s*$/.test(line)

/**
 * Rows that follow a blank line after a table but have no header separator of their own:
 * Markdown ends the table at the blank line and shows these rows as plain text.
 */
function brokenTables(file: string, text = readFileSync(join(repoRoot, file), 'utf8')): string[] {
  const lines = text.split('\n')
  const problems: string[] = []
  let fenced = false
  lines.forEach((line, i) => {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced
    if (fenced || !isRow(line) || lines[i - 1] !== '' || !isRow(lines[i - 2])) return
    if (!isSeparator(lines[i + 1]))
      problems.push(`${file}:${i + 1}: a table row after a blank line inside a table`)
  })
  return problems
}

describe('Markdown tables in README.md and docs/', () => {
  it('no table is cut by a blank line', () => {
    expect(documentationFiles().flatMap((file) => brokenTables(file))).toEqual([])
  })

  it('finds the cut the devices table had', () => {
    const cut = ['| a | b |', '| --- | --- |', '| 1 | 2 |', '', '| 3 | 4 |', ''].join('\n')
    expect(brokenTables('cut.md', cut)).toEqual(['cut.md:5: a table row after a blank line inside a table'])
    const two = ['| a |', '| --- |', '| 1 |', '', '| b |', '| --- |', '| 2 |', ''].join('\n')
    expect(brokenTables('two.md', two)).toEqual([])
  })
})
