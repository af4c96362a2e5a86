/**
 * The same workload as `policy-decision.mjs`, with vitest's bench runner:
 *
 *   npx vitest bench bench/policy-decision.bench.ts --run
 */
import { bench, describe } from 'vitest'
import { compilePolicy } from '../policies/engine.js'
import { buildPolicy, buildRequests } from './workload.mjs'

const DISTINCT_REQUESTS = 4096

for (const size of [10, 1_000, 100_000]) {
  const { policy, devices } = buildPolicy(size)
  const engine = compilePolicy(policy)
  describe(`${size} rules`, () => {
    for (const action of ['publish', 'subscribe'] as const) {
      const pairs = buildRequests(action, DISTINCT_REQUESTS, Math.max(devices, DISTINCT_REQUESTS))
      let i = 0
      bench(
        `${action}: 1,000 decisions`,
        () => {
          for (let n = 0; n < 1000; n++) {
            const pair = pairs[i++ & (DISTINCT_REQUESTS - 1)]!
            engine.decide(pair.principal, pair.request)
          }
        },
        { iterations: 200, warmupIterations: 50 },
      )
    }
  })
}
