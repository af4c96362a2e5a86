/**
 * Summarizes a V8 CPU profile (`node --cpu-prof`, e.g. through EDGE_GATEWAY_BENCH_NODE_ARGS):
 * self time by function and by package or project folder, top entries first.
 *
 *   node bench/profile-summary.mjs /tmp/prof/CPU.*.cpuprofile [--top 30] [--messages N]
 *
 * Also prints the time by stage of the message path (LAN parse and authorize,
 * open, queue, sign, HPKE, cloud publish, acknowledgements...): each sample goes
 * to the innermost frame of the stack that belongs to a stage (node's own
 * frames and mqtt-packet are attributed to their caller), so a stage's share is
 * its own code and what it called in node. With --messages (the messages the
 * gateway handled while profiled), also CPU µs per message per stage.
 *
 * The installed CLI is a bundle (dist/bin/, scripts/bundle.mjs): a frame of a bundle chunk is
 * mapped back through the chunk's source map to the file it came from (a project .ts file is
 * named as its dist/ .js, a package file by its node_modules path), so the areas and stages
 * are the same as for the unbundled dist/cli/main.js.
 */
import { readFileSync } from 'node:fs'
import { mapFrame } from './lib/source-map-frames.mjs'

const args = process.argv.slice(2)
const topAt = args.indexOf('--top')
const top = topAt >= 0 ? Number(args[topAt + 1]) : 30
const messagesAt = args.indexOf('--messages')
const messages = messagesAt >= 0 ? Number(args[messagesAt + 1]) : 0
const valueAt = new Set([topAt, messagesAt].filter((i) => i >= 0).map((i) => i + 1))
const files = args.filter((a, i) => !a.startsWith('--') && !valueAt.has(i))
if (files.length === 0) {
  console.error('usage: node bench/profile-summary.mjs FILE.cpuprofile [--top N] [--messages N]')
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

/** Stages of the message path by where the code lives; the first rule that matches a frame wins. */
const STAGES = [
  [/\/dist\/crypto\/hpke/, 'HPKE seal for the cloud'],
  [
    /\/dist\/(crypto|bridge)\/(envelope|cbor|sign1|structures)|\/dist\/bridge\/cloud-protector|node_modules\/cbor2\//,
    'sign and envelope',
  ],
  [/\/dist\/crypto\/|\/dist\/gateway\/protection\//, 'open device payload'],
  [/\/dist\/bridge\/queue\/|\/dist\/core\/durable/, 'queue append and segments'],
  [/\/dist\/bridge\/|node_modules\/rxjs\//, 'bridge pipeline (RxJS, forwarding, cloud acks)'],
  [/node_modules\/mqtt\//, 'cloud publish (mqtt.js)'],
  [/\/dist\/gateway\/protocol\//, 'LAN protocol guard'],
  [/\/dist\/gateway\//, 'LAN authenticate and authorize (hooks)'],
  [
    /node_modules\/(aedes|mqemitter|aedes-[^/]+|fastfall|fastparallel|fastseries|reusify)\//,
    'LAN broker (aedes)',
  ],
  [/node_modules\/pino|\/dist\/core\/(logger|security-events)/, 'logging'],
  [/\/dist\/core\/metrics/, 'metrics'],
  [/\/dist\//, 'other gateway code'],
]
/** Frames that are attributed to their caller: node's own code and the MQTT codec (LAN or cloud by caller). */
const TRANSPARENT = (url) =>
  !url || url.startsWith('node:') || /node_modules\/(mqtt-packet|bl|readable-stream)\//.test(url)
const FALLBACK = (url) =>
  /mqtt-packet/.test(url) ? 'MQTT codec (caller unknown)' : 'node (streams, timers, TLS, fs)'

function stageOf(node, byParent) {
  const special = {
    '(garbage collector)': 'garbage collection',
    '(idle)': '(idle)',
    '(program)': '(program: V8, native, TLS)',
  }
  const name = node.callFrame.functionName
  if (special[name]) return special[name]
  if (/^(writev|writeBuffer|writeUtf8String|writeLatin1String)$/.test(name) && !node.callFrame.url)
    return 'socket writes (syscalls, TLS encrypt)'
  let first
  for (let n = node; n; n = byParent.get(n.id)) {
    const url = n.callFrame.url
    if (TRANSPARENT(url)) {
      first ??= url
      continue
    }
    for (const [re, stage] of STAGES) if (re.test(url)) return stage
    return area(url)
  }
  return FALLBACK(first ?? '')
}

for (const file of files) {
  const profile = JSON.parse(readFileSync(file, 'utf8'))
  for (const n of profile.nodes) mapFrame(n.callFrame)
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
  const byParent = new Map()
  for (const n of profile.nodes) for (const c of n.children ?? []) byParent.set(c, n)
  const byStage = new Map()
  for (const [id, us] of self) {
    const stage = stageOf(byId.get(id), byParent)
    byStage.set(stage, (byStage.get(stage) ?? 0) + us)
  }
  const busy = total - (byStage.get('(idle)') ?? 0)
  console.log(
    `\nby stage of the message path (busy ${(busy / 1e6).toFixed(2)} s${messages ? `, ${messages} messages: ${(busy / messages).toFixed(1)} µs each` : ''}):`,
  )
  for (const [stage, us] of [...byStage].sort((x, y) => y[1] - x[1]))
    console.log(
      `  ${pct(us)}  ${messages ? `${(us / messages).toFixed(2).padStart(7)} µs/msg  ` : ''}${stage}`,
    )
  console.log('\nby function (self time):')
  for (const [f, us] of [...byFunction].sort((x, y) => y[1] - x[1]).slice(0, top))
    console.log(`  ${pct(us)}  ${f}`)
}
