import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { assertFreshBuild } from '../helpers/fresh-build.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const LOAD = 'closed-q1-64'
const RUN_TIMEOUT_MS = 150_000
const FULL_PATH = ['gateway-psk-hpke', 'gateway-sealed-hpke']

interface Summary {
  median: number
  min: number
  max: number
  n: number
}

interface EnvelopeFigures {
  envelopes: number
  hpkeOpened: number
  hpkeFailures: number
  samples: number
  verified: number
  verifyFailures: number
  unresolved: number
  signatureFailures: number
}

interface Trial {
  round?: number
  trialId?: number
  error?: string
  sent?: number
  acked?: number | null
  delivered?: number
  ackedLost?: number | null
  lateArrivals?: number
  drain?: { complete: boolean; ms: number; markers: number; why?: string }
  envelope?: EnvelopeFigures | null
}

interface Row {
  group: string
  load: string
  setup: string
  system: string
  lan: string
  uplink: string
  okTrials: number
  trials: Trial[]
  summary: Record<string, Summary | null>
}

interface Report {
  rows: Row[]
  machine: { cores: number; model: string }
  signing: Array<{ name: string; side: string; perSec: number; cpuMicrosPerOp: number }> | null
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

const rowName = (row: Row): string => `${row.group} / ${row.load} / ${row.setup}`

/** Names the setup and trial of a failed expectation, with the trial's figures (drain, losses, logs). */
const trialName = (row: Row, trial: Trial): string =>
  `${rowName(row)}, trial ${trial.trialId} (round ${trial.round}): ${JSON.stringify(trial)}`

const median = (row: Row, field: string): number => {
  const s = row.summary[field]
  if (!s)
    throw new Error(
      `Expected a ${field} figure for ${rowName(row)}, got none (trials: ${JSON.stringify(row.trials)})`,
    )
  return s.median
}

/**
 * The benchmark works end to end: one short closed-loop load against the
 * Mosquitto bridge and the gateway (signing only, and the full path with HPKE
 * re-sealing), both in the table and in the JSON, with figures that make
 * sense, plus the signing micro-benchmark. No wall-clock thresholds: the
 * machine is shared.
 */
describe('bench/run.mjs --quick', () => {
  let dir: string
  let result: { code: number | null; stdout: string; stderr: string }
  let report: Report

  beforeAll(async () => {
    // The benchmark runs the built gateway (dist/cli/main.js): refuse a missing or stale build.
    assertFreshBuild()
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
      expect.arrayContaining(['gateway-psk', 'gateway-tcp', 'mosquitto-psk', 'mosquitto-tcp', ...FULL_PATH]),
    )
    for (const row of report.rows) expect(row.load).toBe(LOAD)
  })

  it('reports sane figures: every trial ran, closed loop loses and duplicates nothing', () => {
    for (const row of report.rows) {
      expect(row.okTrials, `${rowName(row)}: ${JSON.stringify(row.trials)}`).toBe(1)
      const trial = row.trials[0]!
      const where = trialName(row, trial)
      expect(trial.sent, where).toBeGreaterThan(0)
      // QoS 1 closed loop: the edge acknowledged every message, and every acknowledged message arrived.
      expect(trial.acked, where).toBe(trial.sent)
      expect(trial.ackedLost, where).toBe(0)
      expect(trial.delivered, where).toBe(trial.sent)
      // Nothing arrived after the drain had ended (a drain that gives up too early shows here).
      expect(trial.lateArrivals, where).toBe(0)
      expect(trial.drain?.complete, where).toBe(true)
      expect(median(row, 'deliveredPerSec'), where).toBeGreaterThan(0)
      expect(median(row, 'duplicates'), where).toBe(0)
      const [p50, p99, p999] = [median(row, 'p50Ms'), median(row, 'p99Ms'), median(row, 'p999Ms')]
      expect(p50, where).toBeGreaterThan(0)
      expect(p99, where).toBeGreaterThanOrEqual(p50)
      expect(p999, where).toBeGreaterThanOrEqual(p99)
      // CPU is read from /proc in clock ticks (10 ms). The gateway spends milliseconds per message, so
      // any trial shows some; Mosquitto about 26 µs, so a trial that a stalled machine held to a few
      // hundred messages can round to 0.
      if (row.system === 'edge-gateway') expect(median(row, 'edgeCpuPer10k'), where).toBeGreaterThan(0)
      else expect(median(row, 'edgeCpuPer10k'), where).toBeGreaterThanOrEqual(0)
      expect(median(row, 'pairCpuPer10k'), where).toBeGreaterThanOrEqual(median(row, 'edgeCpuPer10k'))
      expect(median(row, 'edgePeakMiB'), where).toBeGreaterThan(1)
      expect(median(row, 'firstConnectionMs'), where).toBeGreaterThan(0)
    }
  })

  it('verifies the gateway envelopes it samples and opens every HPKE body: zero signature failures', () => {
    for (const row of report.rows) {
      const trial = row.trials[0]!
      const where = trialName(row, trial)
      const envelope = trial.envelope
      if (row.system === 'Mosquitto bridge') {
        expect(envelope ?? null, where).toBeNull()
        expect(row.uplink, where).toBe('raw payload')
        continue
      }
      expect(envelope, `no envelope figures: ${where}`).toBeTruthy()
      const e = envelope as EnvelopeFigures
      expect(e.envelopes, where).toBeGreaterThanOrEqual(trial.delivered ?? 0)
      expect(e.verified, where).toBeGreaterThan(0)
      expect(e.verifyFailures, where).toBe(0)
      expect(e.hpkeFailures, where).toBe(0)
      expect(e.unresolved, where).toBe(0)
      expect(e.signatureFailures, where).toBe(0)
      if (FULL_PATH.includes(row.setup)) {
        expect(row.uplink, where).toBe('signed, HPKE')
        expect(e.hpkeOpened, where).toBeGreaterThanOrEqual(trial.delivered ?? 0)
      } else expect(e.hpkeOpened, where).toBe(0)
    }
  })

  it('measures signing and sealing alone', () => {
    expect(report.signing).not.toBeNull()
    const names = (report.signing ?? []).map((c) => c.name)
    for (const part of ['Ed25519 sign', 'signEnvelope', 'hpkeSeal', 'verifyEnvelope', 'hpkeOpen']) {
      expect(
        names.some((n) => n.includes(part)),
        part,
      ).toBe(true)
    }
    for (const cell of report.signing ?? []) {
      expect(cell.perSec, cell.name).toBeGreaterThan(0)
      expect(cell.cpuMicrosPerOp, cell.name).toBeGreaterThan(0)
    }
    expect(result.stdout).toContain('### signing and sealing alone')
  })

  it('describes the machine', () => {
    expect(report.machine.cores).toBeGreaterThan(0)
    expect(report.machine.model).not.toBe('')
  })
})
