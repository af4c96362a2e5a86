/**
 * Records what a process allocates, for bench/alloc-summary.mjs: preloaded into the gateway with
 *
 *   EDGE_GATEWAY_BENCH_NODE_ARGS="--import $PWD/bench/alloc-profile.mjs" node bench/run.mjs --only closed-q1-64 ...
 *
 * V8's sampling heap profiler (through node:inspector, in the process itself) with the objects
 * that scavenges and full collections freed counted too, so the profile is every allocation
 * sampled, not only what was still live at the end (`node --heap-prof` keeps only the latter).
 * Sampling starts EDGE_GATEWAY_ALLOC_PROFILE_DELAY_MS (1,500) after start-up began, so the start
 * itself is left out, and the profile is written when the process exits, to
 * EDGE_GATEWAY_ALLOC_PROFILE_DIR (/tmp) as alloc-<pid>.heapprofile.
 */
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector'
import { join } from 'node:path'

const dir = process.env.EDGE_GATEWAY_ALLOC_PROFILE_DIR ?? '/tmp'
const session = new Session()
session.connect()
setTimeout(
  () => {
    session.post('HeapProfiler.startSampling', {
      samplingInterval: 8192,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    })
  },
  Number(process.env.EDGE_GATEWAY_ALLOC_PROFILE_DELAY_MS ?? 1500),
).unref()
// An in-process inspector session answers synchronously, so this runs to its end in 'exit'.
process.on('exit', () => {
  session.post('HeapProfiler.stopSampling', (err, result) => {
    if (err) console.error(`alloc-profile: ${err.message}`)
    else writeFileSync(join(dir, `alloc-${process.pid}.heapprofile`), JSON.stringify(result.profile))
  })
})
