/**
 * `npm run bench:fleet` (bench/fleet.mjs) runs end to end, small: 20 simulated gateways, the
 * single-process consumer and groups of 1 and 2, then the fault trial (a group of 3, a member
 * killed -9, Redis killed -9 and restarted). Its figures are not judged here (no wall-clock bound in
 * a test); what is checked is that every trial delivered every message, the fault trial lost none
 * and flagged every re-send, and the report has its rows.
 */
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { findBinary } from '../helpers/binaries.js'
import { assertFreshBuild } from '../helpers/fresh-build.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const RUN_TIMEOUT_MS = 240_000

interface FleetResult {
  setup: string
  members: number
  messages: number
  delivered: number
  perSecond: number
  peakMiBPerConsumer: number[]
}

interface Faults {
  messages: number
  resent: number
  deliveredOnce: number | string
  lost: number
  flaggedDuplicates: number
  adoptedAfterSeconds: number
}

describe('bench/fleet.mjs, small', () => {
  let dir: string
  beforeAll(async () => {
    await findBinary('redis-server', 'apt-get install redis-server')
    dir = await makeTempDir('eg-fleet-smoke-')
  })
  afterAll(async () => {
    if (dir) await removeDir(dir)
  })

  it(
    'drains every message in every setup and loses none under its faults',
    async () => {
      assertFreshBuild()
      const json = join(dir, 'fleet.json')
      const stdout = await new Promise<string>((resolve, reject) => {
        execFile(
          process.execPath,
          ['bench/fleet.mjs', '--gateways', '20', '--per-gateway', '50', '--members', '1,2', '--json', json],
          { cwd: ROOT, timeout: RUN_TIMEOUT_MS, killSignal: 'SIGTERM', maxBuffer: 16 * 1024 * 1024 },
          (err, out, errOut) => (err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(out)),
        )
      })
      const report = JSON.parse(readFileSync(json, 'utf8')) as { results: FleetResult[]; faults: Faults }
      expect(report.results.map((r) => r.setup)).toEqual([
        'single process (memory)',
        'group of 1',
        'group of 2',
      ])
      for (const r of report.results) {
        expect(r.delivered, r.setup).toBe(r.messages)
        expect(r.messages).toBe(1000)
        expect(r.perSecond).toBeGreaterThan(0)
        expect(r.peakMiBPerConsumer).toHaveLength(Math.max(1, r.members))
      }
      const f = report.faults
      expect(f.lost).toBe(0)
      expect(f.deliveredOnce).toBe(f.messages)
      expect(f.flaggedDuplicates).toBeGreaterThanOrEqual(f.resent)
      expect(f.resent).toBeGreaterThan(0)
      expect(f.adoptedAfterSeconds).toBeGreaterThan(0)
      expect(stdout).toMatch(/^\| group of 2 \| 1 \| \d+ \| [\d.]+x \|/m)
      expect(stdout).toMatch(/^\| 12000 of 12000 \| 0 \|/m)
    },
    RUN_TIMEOUT_MS + 10_000,
  )
})
