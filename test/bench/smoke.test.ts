import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { assertFreshBuild } from '../helpers/fresh-build.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
/** The closed loop (QoS 1 and QoS 0) and the serial round trip: short, and every setup of the closed loop. */
const LOADS = ['closed-q1-64', 'closed-q0-64', 'serial-q1-64']
const RUN_TIMEOUT_MS = 180_000
const FULL_PATH = ['gateway-psk-hpke', 'gateway-sealed-hpke']
const PSK_PAIR = ['gateway-psk', 'mosquitto-psk']

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
  lost?: number
  lateArrivals?: number
  stalled?: boolean
  errors?: string[]
  drain?: { complete: boolean; ms: number; markers: number; why?: string }
  ackRttMs?: { n: number; p50: number; p99: number; p999: number; max: number } | null
  envelope?: EnvelopeFigures | null
}

interface Row {
  group: string
  load: string
  setup: string
  system: string
  lan: string
  uplink: string
  qos: number
  loadSpec: { publishers?: number }
  okTrials: number
  trials: Trial[]
  summary: Record<string, Summary | null>
}

interface AtRest {
  setup: string
  system: string
  n: number
  of: number
  rssMiB: Summary | null
  errors: string[]
}

interface GoalLine {
  id: string
  gateway: number | null
  mosquitto: number | null
  ratio: number | null
  met: boolean | null
  notes: string[]
}

interface Report {
  rows: Row[]
  atRest: AtRest[]
  headline: { goals: GoalLine[] }
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

const rowName = (row: Row): string => `load ${row.load}, setup ${row.setup} (${row.group})`

/**
 * Names the load, setup and trial of a failed expectation, with the trial's figures (drain,
 * losses, errors), so that a failure in CI says where it happened.
 */
const trialName = (row: Row, trial: Trial | undefined): string =>
  trial
    ? `${rowName(row)}, trial ${trial.trialId} (round ${trial.round}): ${JSON.stringify(trial)}`
    : `${rowName(row)}, no trial: ${JSON.stringify(row.trials)}`

const median = (row: Row, field: string): number => {
  const s = row.summary[field]
  if (!s) throw new Error(`Expected a ${field} figure for ${trialName(row, row.trials[0])}, got none`)
  return s.median
}

/** The queue's two durability modes beside Mosquitto (bench/lib/plan.mjs). */
const DURABILITY = ['gateway-psk', 'gateway-psk-write', 'mosquitto-psk']

/**
 * The benchmark works end to end: short closed loops (QoS 1 and 0) and the
 * serial round trip against the Mosquitto bridge and the gateway (the closed
 * loop also with signing only and the full path with HPKE re-sealing), both in
 * the table and in the JSON, with figures that make sense, the edges at rest,
 * the issue 14 goals, and the signing micro-benchmark. No wall-clock
 * thresholds: the machine is shared, and CI runs this beside the other tests.
 */
describe('bench/run.mjs --quick', () => {
  let dir: string
  let result: { code: number | null; stdout: string; stderr: string }
  let report: Report

  beforeAll(async () => {
    // The benchmark runs the built gateway (dist/bin/edge-gateway.js): refuse a missing or stale build.
    assertFreshBuild()
    dir = await makeTempDir('edge-gw-bench-smoke-')
    const out = join(dir, 'latest.json')
    result = await runBench(['--quick', '--only', LOADS.join(','), '--no-pinned', '--no-wire', '--out', out])
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

  it('prints rows for both systems for each load, as many as the JSON has', () => {
    for (const load of LOADS) {
      const tableRows = result.stdout.split('\n').filter((line) => line.startsWith(`| ${load} `))
      const systems = new Set(tableRows.map((line) => line.split('|')[2]?.trim()))
      const where = `load ${load}, the printed table rows: ${JSON.stringify(tableRows)}`
      expect(systems, where).toEqual(new Set(['Mosquitto bridge', 'edge-gateway']))
      expect(tableRows.length, where).toBe(report.rows.filter((r) => r.load === load).length)
    }
  })

  it('has a Mosquitto and a gateway setup for each LAN mode measured, and only the loads asked for', () => {
    const setupsOf = (load: string) => {
      const groups: Record<string, string[]> = {}
      for (const r of report.rows.filter((x) => x.load === load)) {
        groups[r.group] = [...(groups[r.group] ?? []), r.setup].sort()
      }
      return groups
    }
    expect(setupsOf('closed-q1-64'), 'load closed-q1-64, its setups per group').toEqual({
      '2 cores, TLS-PSK': ['gateway-psk', 'mosquitto-psk'],
      '2 cores, plain TCP': ['gateway-sealed', 'gateway-tcp', 'mosquitto-tcp'],
      '2 cores, full path (sign, HPKE)': [
        'gateway-psk',
        ...FULL_PATH,
        'gateway-sealed',
        'mosquitto-psk',
      ].sort(),
      '2 cores, durability (TLS-PSK)': DURABILITY,
    })
    expect(setupsOf('closed-q0-64'), 'load closed-q0-64, its setups per group').toEqual({
      '2 cores, TLS-PSK': ['gateway-psk', 'mosquitto-psk'],
    })
    expect(setupsOf('serial-q1-64'), 'load serial-q1-64, its setups per group').toEqual({
      '2 cores, TLS-PSK': ['gateway-psk', 'mosquitto-psk'],
      '2 cores, durability (TLS-PSK)': DURABILITY,
    })
    for (const row of report.rows) expect(LOADS, trialName(row, row.trials[0])).toContain(row.load)
  })

  it('reports sane figures: every trial ran, the gateway loses and duplicates nothing, a Mosquitto loss is counted', () => {
    for (const row of report.rows) {
      expect(row.okTrials, trialName(row, row.trials[0])).toBe(1)
      const trial = row.trials[0]!
      const where = trialName(row, trial)
      expect(trial.sent, where).toBeGreaterThan(0)
      if (row.qos === 1) {
        // QoS 1: the edge acknowledged every message.
        expect(trial.acked, where).toBe(trial.sent)
      } else {
        expect(trial.acked ?? null, where).toBeNull()
        expect(trial.ackedLost ?? null, where).toBeNull()
      }
      if (row.system === 'edge-gateway') {
        // Every acknowledged message arrived; QoS 0 too: at most 100 messages outstanding end to
        // end cannot overflow its queue.
        if (row.qos === 1) expect(trial.ackedLost, where).toBe(0)
        expect(trial.delivered, where).toBe(trial.sent)
      } else {
        // Mosquitto's bridge acknowledges and then loses a few messages in some closed loops (7 to
        // 92 messages, in 2 or 3 of the about 18 closed-loop trials of each recent full run,
        // docs/performance.md): what the bench measures about it, not a fault of the run. The
        // loss must be counted, to the message.
        expect((trial.delivered ?? Number.NaN) + (trial.lost ?? 0), where).toBe(trial.sent)
        if (row.qos === 1) expect(trial.ackedLost, where).toBe(trial.lost)
      }
      // Nothing arrived after the drain had ended (a drain that gives up too early shows here).
      expect(trial.lateArrivals, where).toBe(0)
      if ((trial.lost ?? 0) === 0) expect(trial.drain?.complete, where).toBe(true)
      else {
        // Only a Mosquitto row gets here (the gateway's delivered = sent above). Its drain ended
        // because a marker sent after the last PUBACK came through: what is missing is lost, not
        // late (the 75 messages of a mosquitto-tcp closed loop in CI, 2026-12-07 09:46 UTC).
        expect(trial.drain, where).toMatchObject({
          complete: false,
          why: expect.stringContaining('are lost'),
        })
        expect(trial.drain?.markers, where).toBeGreaterThan(0)
      }
      expect(trial.errors, where).toEqual([])
      expect(median(row, 'deliveredPerSec'), where).toBeGreaterThan(0)
      expect(median(row, 'duplicates'), where).toBe(0)
      const [p50, p99, p999] = [median(row, 'p50Ms'), median(row, 'p99Ms'), median(row, 'p999Ms')]
      expect(p50, where).toBeGreaterThan(0)
      expect(p99, where).toBeGreaterThanOrEqual(p50)
      expect(p999, where).toBeGreaterThanOrEqual(p99)
      // CPU is read from /proc in clock ticks (10 ms). The gateway spends milliseconds per message, so
      // a closed loop shows some; Mosquitto about 26 µs, so a trial that a stalled machine held to a few
      // hundred messages can round to 0, and so can a short serial trial of either system.
      if (row.system === 'edge-gateway' && row.load !== 'serial-q1-64')
        expect(median(row, 'edgeCpuPer10k'), where).toBeGreaterThan(0)
      else expect(median(row, 'edgeCpuPer10k'), where).toBeGreaterThanOrEqual(0)
      expect(median(row, 'pairCpuPer10k'), where).toBeGreaterThanOrEqual(median(row, 'edgeCpuPer10k'))
      expect(median(row, 'edgePeakMiB'), where).toBeGreaterThan(1)
      expect(median(row, 'firstConnectionMs'), where).toBeGreaterThan(0)
    }
  })

  it('measures the serial PUBACK round trip of every message, one publisher, one in flight', () => {
    for (const row of report.rows.filter((r) => r.load === 'serial-q1-64')) {
      const trial = row.trials[0]!
      const where = trialName(row, trial)
      expect(row.loadSpec.publishers, where).toBe(1)
      const rtt = trial.ackRttMs
      expect(rtt, where).toBeTruthy()
      expect(rtt?.n, where).toBe(trial.acked)
      expect(rtt?.p50, where).toBeGreaterThan(0)
      expect(rtt?.p99, where).toBeGreaterThanOrEqual(rtt?.p50 ?? Number.POSITIVE_INFINITY)
      expect(rtt?.max, where).toBeGreaterThanOrEqual(rtt?.p999 ?? Number.POSITIVE_INFINITY)
    }
    for (const row of report.rows.filter((r) => r.load !== 'serial-q1-64'))
      expect(row.trials[0]?.ackRttMs ?? null, trialName(row, row.trials[0])).toBeNull()
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

  it('reads the resident memory of an edge of each system at rest, 20 s after its start', () => {
    const where = `at rest, round 1: ${JSON.stringify(report.atRest)}`
    expect(report.atRest.map((a) => a.setup).sort(), where).toEqual(PSK_PAIR)
    for (const a of report.atRest) {
      expect([a.setup, a.n, a.of, a.errors], where).toEqual([a.setup, 1, 1, []])
      expect(a.rssMiB?.median, where).toBeGreaterThan(1)
    }
    expect(result.stdout, where).toContain('### at rest: start-up and resident memory')
  })

  it('computes the issue 14 goals from the run: both systems, for every goal the loads measured', () => {
    const goals = report.headline.goals
    const where = `issue 14 goals: ${JSON.stringify(goals)}`
    const measured = ['qos1-closed', 'full-path-closed', 'qos0-closed', 'serial-puback', 'rss-at-rest']
    for (const id of measured) {
      const goal = goals.find((g) => g.id === id)
      expect(goal, `goal ${id}: ${where}`).toBeTruthy()
      expect(goal?.gateway, `goal ${id}: ${where}`).toBeGreaterThan(0)
      expect(goal?.mosquitto, `goal ${id}: ${where}`).toBeGreaterThan(0)
      expect(typeof goal?.met, `goal ${id}: ${where}`).toBe('boolean')
    }
    // The serial round trip is judged in the mode that survives kill -9 (durability write), the default's beside it.
    const serial = goals.find((g) => g.id === 'serial-puback')
    expect(serial?.notes, `goal serial-puback: ${where}`).toEqual([
      expect.stringMatching(/^durability fsync \(the default\): p50 [\d.]+ ms$/),
    ])
    // No rate load in this run: its goals are not judged, and say so.
    for (const id of ['p99-2000', 'cpu-2000']) {
      const goal = goals.find((g) => g.id === id)
      expect(goal, `goal ${id}: ${where}`).toBeTruthy()
      expect(goal?.met, `goal ${id}: ${where}`).toBeNull()
      expect(goal?.notes, `goal ${id}: ${where}`).toEqual(['no gateway figure', 'no Mosquitto figure'])
    }
    expect(result.stdout, where).toContain('### issue 14 goals')
  })

  it('measures signing and sealing alone', () => {
    expect(report.signing, 'the signing micro-benchmark (bench/signing.mjs) in the JSON').not.toBeNull()
    const names = (report.signing ?? []).map((c) => c.name)
    for (const part of ['Ed25519 sign', 'signEnvelope', 'hpkeSeal', 'verifyEnvelope', 'hpkeOpen']) {
      expect(
        names.some((n) => n.includes(part)),
        `signing micro-benchmark: a cell for ${part} among ${JSON.stringify(names)}`,
      ).toBe(true)
    }
    for (const cell of report.signing ?? []) {
      expect(cell.perSec, `signing micro-benchmark, ${cell.name}`).toBeGreaterThan(0)
      expect(cell.cpuMicrosPerOp, `signing micro-benchmark, ${cell.name}`).toBeGreaterThan(0)
    }
    expect(result.stdout, 'the printed signing micro-benchmark').toContain('### signing and sealing alone')
  })

  it('describes the machine', () => {
    expect(report.machine.cores, `machine: ${JSON.stringify(report.machine)}`).toBeGreaterThan(0)
    expect(report.machine.model, `machine: ${JSON.stringify(report.machine)}`).not.toBe('')
  })
})
