import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { assertFreshBuild } from '../helpers/fresh-build.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
/** The quick run takes about three minutes on 2 shared cores; more while an uplink backlog drains. */
const RUN_TIMEOUT_MS = 480_000
const ATTACKS = [
  'idle-tls',
  'big-connect',
  'flood',
  'big-publish',
  'subscriptions',
  'malformed',
  'poison',
  'lockout',
]

interface Row {
  attack: string
  phase?: number
  error: string | null
  result: Record<string, unknown> | null
  goals?: Record<string, boolean>
  ackedDuring?: number
  lostDuring?: number
  gatewayAlive?: boolean
}

interface DeviceDelivery {
  id: string
  acked: number
  received: number
  lost: number
}

interface Report {
  attacks: string[]
  rows: Row[]
  gatewayExited: unknown
  delivery: { devices: DeviceDelivery[]; totals: { acked: number; received: number; lost: number } }
}

function runBench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['bench/attacks.mjs', ...args],
      { cwd: ROOT, timeout: RUN_TIMEOUT_MS, killSignal: 'SIGTERM', maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0
        resolve({ code, stdout, stderr })
      },
    )
  })
}

/**
 * Issue 13's acceptance bench, short: every attack runs against the built
 * gateway while two legitimate devices publish QoS 1, and every message the
 * gateway acknowledged to them reaches the cloud. The latency and memory
 * goals are in the printed table (and gate `npm run bench:attacks`), not
 * asserted here: timing on a shared CI machine is not a unit test's business.
 */
describe('bench/attacks.mjs --quick', () => {
  let dir: string
  let result: { code: number | null; stdout: string; stderr: string }
  let report: Report

  beforeAll(async () => {
    // The bench runs the built gateway (dist/bin/edge-gateway.js): refuse a missing or stale build.
    assertFreshBuild()
    dir = await makeTempDir('edge-gw-attacks-test-')
    const out = join(dir, 'attacks.json')
    result = await runBench(['--quick', '--json', '--report-only', '--out', out])
    if (result.code !== 0) {
      throw new Error(
        `bench/attacks.mjs exited with ${result.code}\n--- stderr ---\n${result.stderr}\n--- stdout ---\n${result.stdout}`,
      )
    }
    report = JSON.parse(readFileSync(out, 'utf8')) as Report
    process.stdout.write(`${result.stdout}\n`)
  }, RUN_TIMEOUT_MS + 10_000)

  afterAll(async () => {
    if (dir) await removeDir(dir)
  })

  it('runs every attack, with the gateway alive throughout', () => {
    expect(report.attacks).toEqual(ATTACKS)
    expect(report.rows.map((r) => r.attack)).toEqual(ATTACKS)
    for (const row of report.rows) {
      expect(row.error, row.attack).toBeNull()
      expect(row.result, row.attack).not.toBeNull()
      expect(row.phase, row.attack).toBeTypeOf('number')
      expect(row.gatewayAlive, row.attack).toBe(true)
      expect(Object.keys(row.goals ?? {}).sort(), row.attack).toEqual([
        'access',
        'delivery',
        'latency',
        'rssAfter',
        'rssMax',
      ])
    }
    expect(report.gatewayExited).toBeNull()
  })

  // Issue 13's memory goals are not timing: the gateway stays under 200 MiB through every attack and
  // is back within 20 MiB of where it was after each (the p99 ratio is printed, not asserted here:
  // a neighbour's load moves it, and npm run bench:attacks on a quiet machine is its measure).
  it('keeps gateway memory under 200 MiB and gives it back after each attack; a TLS-PSK device connects during each', () => {
    for (const row of report.rows) {
      expect(row.goals?.rssMax, `${row.attack}: RSS max`).toBe(true)
      expect(row.goals?.rssAfter, `${row.attack}: RSS after vs before`).toBe(true)
      expect(row.goals?.access, `${row.attack}: device access`).toBe(true)
    }
  })

  it('prints one table row per attack', () => {
    const lines = result.stdout.split('\n')
    for (const name of ATTACKS) {
      expect(lines.filter((l) => l.startsWith(`| ${name} (`)).length, name).toBe(1)
    }
    expect(result.stdout).toMatch(/^total: legit acknowledged \d+, received \d+, lost \d+/m)
  })

  it('loses nothing the legitimate devices got a PUBACK for', () => {
    const { devices, totals } = report.delivery
    expect(devices.map((d) => d.id)).toEqual(['good-1', 'good-2'])
    for (const row of report.rows) expect(row.ackedDuring, row.attack).toBeGreaterThan(0)
    // Where the losses start: acknowledged during which attack, and never delivered.
    const during = report.rows
      .filter((r) => (r.lostDuring ?? 0) > 0)
      .map((r) => `${r.attack} ${r.lostDuring}/${r.ackedDuring}`)
    for (const d of devices) {
      expect(d.acked, d.id).toBeGreaterThan(0)
      expect(
        d.lost,
        `${d.id}: acknowledged ${d.acked}, received ${d.received}; lost/acknowledged during: ${during.join(', ')}`,
      ).toBe(0)
    }
    expect(totals.lost).toBe(0)
  })
})
