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
import { mapFrame } from './lib/source-map-frames.mjs'

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

/**
 * Where a frame's code is: its file (mapped back from the bundle: the project's .ts source, a
 * package's file) and line, the root left out.
 */
function where(frame) {
  const mapped = { ...frame }
  mapFrame(mapped)
  const own = /\/dist\/(?!bin\/)(.*)\.js$/.exec(mapped.url)
  const file = own ? `${own[1]}.ts` : mapped.url.replace(/^.*?\/node_modules\//, '')
  return `${file}:${mapped.lineNumber + 1}`
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
