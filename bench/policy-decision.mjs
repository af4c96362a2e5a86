/**
 * Decisions per second of the compiled policy engine, for publish and
 * subscribe, with 10, 1,000 and 100,000 rules. Prints a table; saves nothing.
 *
 *   npm run build && node bench/policy-decision.mjs
 *
 * Each cell: 200,000 decisions after a warm-up, median of 5 runs. The runs of
 * all cells are interleaved, so a burst of load elsewhere on the machine hits
 * every cell alike. Two kinds of traffic: from 4,096 devices spread over all
 * those the policy names (each decision reads another device's rules, mostly
 * out of the CPU caches), and from 2 devices (the same rules every time).
 */
import { compilePolicy } from '../dist/policies/index.js'
import { buildPolicy, buildRequests } from './workload.mjs'

const SIZES = [10, 1_000, 100_000]
const ACTIONS = ['publish', 'subscribe']
const ITERATIONS = 200_000
const RUNS = 5
const DISTINCT_REQUESTS = 4096 // a power of two: the loop masks the index

function run(engine, pairs) {
  let allowed = 0
  const start = process.hrtime.bigint()
  for (let i = 0; i < ITERATIONS; i++) {
    const pair = pairs[i & (DISTINCT_REQUESTS - 1)]
    if (engine.decide(pair.principal, pair.request).allowed) allowed++
  }
  return { ns: Number(process.hrtime.bigint() - start) / ITERATIONS, allowed }
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}

const cells = []
for (const size of SIZES) {
  const { policy, devices } = buildPolicy(size)
  const compileStart = process.hrtime.bigint()
  const engine = compilePolicy(policy)
  const compileMs = Number(process.hrtime.bigint() - compileStart) / 1e6
  for (const action of ACTIONS) {
    cells.push({
      size,
      action,
      engine,
      compileMs,
      spread: {
        pairs: buildRequests(action, DISTINCT_REQUESTS, Math.max(devices, DISTINCT_REQUESTS)),
        ns: [],
      },
      hot: { pairs: buildRequests(action, DISTINCT_REQUESTS, 2), ns: [] },
      allowed: 0,
    })
  }
}

for (const cell of cells) {
  run(cell.engine, cell.spread.pairs) // warm-up
  run(cell.engine, cell.hot.pairs)
}
for (let r = 0; r < RUNS; r++) {
  for (const cell of cells) {
    const spread = run(cell.engine, cell.spread.pairs)
    cell.spread.ns.push(spread.ns)
    cell.allowed = spread.allowed
    cell.hot.ns.push(run(cell.engine, cell.hot.pairs).ns)
  }
}

const format = (n) => Math.round(n).toLocaleString('en-US')
console.log(`Node ${process.version}, ${format(ITERATIONS)} decisions a run, median of ${RUNS} runs`)
console.table(
  cells.map((cell) => {
    const spread = median(cell.spread.ns)
    const hot = median(cell.hot.ns)
    return {
      rules: format(cell.size),
      action: cell.action,
      'ns/decision (4,096 devices)': format(spread),
      'decisions/s (4,096 devices)': format(1e9 / spread),
      'ns/decision (2 devices)': format(hot),
      'decisions/s (2 devices)': format(1e9 / hot),
      'allowed %': Math.round((100 * cell.allowed) / ITERATIONS),
      'compile ms': format(cell.compileMs),
    }
  }),
)
