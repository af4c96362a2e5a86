import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { makeTempDir, removeDir } from '../helpers/tmp.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const LOAD = 'closed-q1-64'
const RUN_TIMEOUT_MS = 150_000

interface Summary {
  median: number
  min: number
  max: number
  n: number
}

interface Row {
  load: string
  setup: string
  system: string
  lan: string
  okTrials: number
  trials: Array<{ error?: string; sent?: number; delivered?: number }>
  summary: Record<string, Summary | null>
}

interface Report {
  rows: Row[]
  machine: { cores: number; model: string }
}

function runBench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['bench/run.mjs', ...args],
      { cwd: ROOT, timeout: RUN_TIMEOUT_MS, killSignal: 'SIGTERM', maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0
        resolve({ code, stdout, stderr })
      },
    )
  })
}

const median = (row: Row, field: string): number => {
  const s = row.summary[field]
  if (!s)
    throw new Error(
      `Expected a ${field} figure for ${row.setup}, got none (trials: ${JSON.stringify(row.trials)})`,
    )
  return s.median
}

/**
 * The benchmark works end to end: one short closed-loop load against the
 * Mosquitto bridge and the gateway, both in the table and in the JSON, with
 * figures that make sense. No wall-clock thresholds: the machine is shared.
 */
describe('bench/run.mjs --quick', () => {
  let dir: string
  let result: { code: number | null; stdout: string; stderr: string }
  let report: Report

  beforeAll(async () => {
    if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) {
      throw new Error('dist/ is missing: run npm run build first (the benchmark runs the built gateway)')
    }
    dir = await makeTempDir('edge-gw-bench-smoke-')
    const out = join(dir, 'latest.json')
    result = await runBench(['--quick', '--only', LOAD, '--no-pinned', '--no-wire', '--out', out])
    if (result.code !== 0) {
      throw new Error(
        `bench/run.mjs exited with ${result.code}\n--- stderr ---\n${result.stderr}\n--- stdout ---\n${result.stdout}`,
      )
    }
    report = JSON.parse(readFileSync(out, 'utf8')) as Report
  }, RUN_TIMEOUT_MS + 10_000)

  afterAll(async () => {
    if (dir) await removeDir(dir)
  })

  it('prints rows for both systems for the load', () => {
    const tableRows = result.stdout.split('\n').filter((line) => line.startsWith(`| ${LOAD} `))
    const systems = new Set(tableRows.map((line) => line.split('|')[2]?.trim()))
    expect(systems).toEqual(new Set(['Mosquitto bridge', 'edge-gateway']))
    expect(tableRows.length).toBe(report.rows.length)
  })

  it('has a Mosquitto and a gateway setup for each LAN mode measured', () => {
    const setups = report.rows.map((r) => r.setup).sort()
    expect(setups).toEqual(
      expect.arrayContaining(['gateway-psk', 'gateway-tcp', 'mosquitto-psk', 'mosquitto-tcp']),
    )
    for (const row of report.rows) expect(row.load).toBe(LOAD)
  })

  it('reports sane figures: every trial ran, closed loop loses and duplicates nothing', () => {
    for (const row of report.rows) {
      expect(row.okTrials, `${row.setup}: ${JSON.stringify(row.trials)}`).toBe(1)
      const trial = row.trials[0]!
      expect(trial.sent).toBeGreaterThan(0)
      expect(trial.delivered).toBe(trial.sent)
      expect(median(row, 'deliveredPerSec')).toBeGreaterThan(0)
      expect(median(row, 'ackedLost')).toBe(0)
      expect(median(row, 'duplicates')).toBe(0)
      const [p50, p99, p999] = [median(row, 'p50Ms'), median(row, 'p99Ms'), median(row, 'p999Ms')]
      expect(p50).toBeGreaterThan(0)
      expect(p99).toBeGreaterThanOrEqual(p50)
      expect(p999).toBeGreaterThanOrEqual(p99)
      expect(median(row, 'edgeCpuPer10k')).toBeGreaterThan(0)
      expect(median(row, 'pairCpuPer10k')).toBeGreaterThanOrEqual(median(row, 'edgeCpuPer10k'))
      expect(median(row, 'edgePeakMiB')).toBeGreaterThan(1)
      expect(median(row, 'firstConnectionMs')).toBeGreaterThan(0)
    }
  })

  it('describes the machine', () => {
    expect(report.machine.cores).toBeGreaterThan(0)
    expect(report.machine.model).not.toBe('')
  })
})
