/**
 * Summarizes a V8 CPU profile (`node --cpu-prof`, e.g. through EDGE_GATEWAY_BENCH_NODE_ARGS):
 * self time by function and by package or project folder, top entries first.
 *
 *   node bench/profile-summary.mjs /tmp/prof/CPU.*.cpuprofile [--top 30]
 */
import { readFileSync } from 'node:fs'

const args = process.argv.slice(2)
const topAt = args.indexOf('--top')
const top = topAt >= 0 ? Number(args[topAt + 1]) : 30
const files = args.filter((a, i) => !a.startsWith('--') && i !== topAt + 1)
if (files.length === 0) {
  console.error('usage: node bench/profile-summary.mjs FILE.cpuprofile [--top N]')
  process.exit(2)
}

/** Where a frame's code lives: a project folder, a package, node's own, or V8. */
function area(url) {
  if (!url) return '(v8/native)'
  if (url.startsWith('node:')) return url
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg) return pkg[1]
  const own = /\/dist\/([^/]+)\//.exec(url)
  if (own) return `edge-gateway ${own[1]}/`
  return url.replace(/^file:\/\//, '')
}

for (const file of files) {
  const profile = JSON.parse(readFileSync(file, 'utf8'))
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map()
  const deltas = profile.timeDeltas
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]
    self.set(id, (self.get(id) ?? 0) + (deltas[i] ?? 0))
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0)
  const byFunction = new Map()
  const byArea = new Map()
  for (const [id, us] of self) {
    const n = byId.get(id)
    const cf = n.callFrame
    const name = `${cf.functionName || '(anonymous)'} ${area(cf.url)}${cf.url ? `:${cf.lineNumber + 1}` : ''}`
    byFunction.set(name, (byFunction.get(name) ?? 0) + us)
    const a =
      cf.functionName === '(idle)'
        ? '(idle)'
        : cf.functionName === '(garbage collector)'
          ? '(gc)'
          : area(cf.url)
    byArea.set(a, (byArea.get(a) ?? 0) + us)
  }
  const pct = (us) => `${((100 * us) / total).toFixed(1).padStart(5)} %`
  console.log(`${file}: ${(total / 1e6).toFixed(1)} s sampled`)
  console.log('\nby area (self time):')
  for (const [a, us] of [...byArea].sort((x, y) => y[1] - x[1]).slice(0, top))
    console.log(`  ${pct(us)}  ${a}`)
  console.log('\nby function (self time):')
  for (const [f, us] of [...byFunction].sort((x, y) => y[1] - x[1]).slice(0, top))
    console.log(`  ${pct(us)}  ${f}`)
}
