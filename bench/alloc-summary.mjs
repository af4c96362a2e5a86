/**
 * Summarizes an allocation profile written by bench/alloc-profile.mjs: bytes allocated by
 * function (its own allocations), largest first, and the call paths that allocated most.
 * Frames of the bundled CLI (dist/bin/) are mapped back through its source maps to the file and
 * line they came from. With --messages N (the messages the process handled while sampled), also
 * bytes per message.
 *
 *   node bench/alloc-summary.mjs /tmp/alloc-1234.heapprofile [--top 30] [--messages N]
 */
import { readFileSync } from 'node:fs'
import { SourceMap } from 'node:module'
import { fileURLToPath } from 'node:url'

const args = process.argv.slice(2)
const option = (name, fallback) => {
  const at = args.indexOf(name)
  return at >= 0 ? Number(args[at + 1]) : fallback
}
const top = option('--top', 30)
const messages = option('--messages', 0)
const file = args.find((a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--'))
if (!file) {
  console.error('usage: node bench/alloc-summary.mjs FILE.heapprofile [--top N] [--messages N]')
  process.exit(2)
}

const maps = new Map()
function where(frame) {
  if (!/\/dist\/bin\/.*\.js$/.test(frame.url))
    return `${frame.url.replace(/^.*\/node_modules\//, '')}:${frame.lineNumber + 1}`
  if (!maps.has(frame.url)) {
    try {
      maps.set(frame.url, new SourceMap(JSON.parse(readFileSync(`${fileURLToPath(frame.url)}.map`, 'utf8'))))
    } catch {
      maps.set(frame.url, null)
    }
  }
  const entry = maps.get(frame.url)?.findEntry(frame.lineNumber, frame.columnNumber)
  if (!entry?.originalSource) return frame.url
  return `${entry.originalSource.replace(/^(\.\.\/)+(node_modules\/)?/, '')}:${entry.originalLine + 1}`
}

const profile = JSON.parse(readFileSync(file, 'utf8'))
const byFunction = new Map()
const byPath = new Map()
let total = 0
function walk(node, path) {
  const name = `${node.callFrame.functionName || '(anonymous)'} ${where(node.callFrame)}`
  const here = [...path, name].slice(-4)
  if (node.selfSize > 0) {
    total += node.selfSize
    byFunction.set(name, (byFunction.get(name) ?? 0) + node.selfSize)
    const key = here.toReversed().join(' < ')
    byPath.set(key, (byPath.get(key) ?? 0) + node.selfSize)
  }
  for (const child of node.children ?? []) walk(child, here)
}
walk(profile.head, [])

const mb = (bytes) => `${(bytes / 1e6).toFixed(1).padStart(7)} MB`
const perMessage = (bytes) => (messages > 0 ? `${(bytes / messages).toFixed(0).padStart(7)} B/msg` : '')
console.log(
  `${file}: ${mb(total).trim()} allocated while sampled${messages > 0 ? `, ${(total / messages / 1000).toFixed(1)} KB per message` : ''}`,
)
console.log('\nby function (its own allocations):')
for (const [k, v] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`${mb(v)} ${((100 * v) / total).toFixed(1).padStart(5)} % ${perMessage(v)}  ${k}`)
}
console.log('\nby call path (innermost first):')
for (const [k, v] of [...byPath].sort((a, b) => b[1] - a[1]).slice(0, Math.ceil(top / 2))) {
  console.log(`${mb(v)} ${((100 * v) / total).toFixed(1).padStart(5)} %  ${k}`)
}
