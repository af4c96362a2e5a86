import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { assertFreshBuild } from '../helpers/fresh-build.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const RUN_TIMEOUT_MS = 180_000
const DEVICES = 12
const VARIANTS = ['scrypt14/c2/m32/cache0', 'pepper10']

interface KindFigures {
  devices: number
  kept: number
  published: number
  failed: number
  connackP50Ms: number | null
  connackP99Ms: number | null
  pubackP99Ms: number | null
  lastPubackMs: number | null
  errors: Record<string, number>
}

interface Phase {
  lastPubackMs: number | null
  password: KindFigures
  psk: KindFigures
  listeningMs?: number
  edgeCpuSeconds?: number
  steady?: { count: number; p99Ms: number | null; backAfterMs?: Record<string, number | null> }
}

interface Result {
  name: string
  variant?: {
    name: string
    form: string
    ln: number
    concurrency?: number
    memoryMiB?: number
    cacheEntries?: number
  }
  initial: Phase
  before: { count: number; p99Ms: number | null }
  reconnect: Phase
  restart: Phase
}

/**
 * bench/storm.mjs works end to end, small: a few devices of each kind against two gateway
 * variants and the Mosquitto edge, every phase; every device publishes in every phase, the
 * figures are there and the variants were applied. No wall-clock thresholds: the machine is shared.
 */
describe('bench/storm.mjs, small', () => {
  let dir: string
  let stdout: string
  let results: Result[]

  beforeAll(async () => {
    assertFreshBuild()
    dir = await makeTempDir('edge-gw-storm-smoke-')
    const out = join(dir, 'storm.json')
    const args = [
      'bench/storm.mjs',
      ...['--password-devices', String(DEVICES), '--psk-devices', String(DEVICES)],
      ...['--distinct', '3', '--before-ms', '500', '--variants', VARIANTS.join(','), '--json', out],
    ]
    const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
      execFile(
        process.execPath,
        args,
        { cwd: ROOT, timeout: RUN_TIMEOUT_MS, killSignal: 'SIGTERM', maxBuffer: 16 * 1024 * 1024 },
        (err, out, errText) =>
          resolve({
            code: err ? (typeof err.code === 'number' ? err.code : null) : 0,
            stdout: out,
            stderr: errText,
          }),
      ),
    )
    if (run.code !== 0)
      throw new Error(
        `bench/storm.mjs exited with ${run.code}\n--- stderr ---\n${run.stderr}\n--- stdout ---\n${run.stdout}`,
      )
    stdout = run.stdout
    results = (JSON.parse(readFileSync(out, 'utf8')) as { results: Result[] }).results
  }, RUN_TIMEOUT_MS + 10_000)

  afterAll(async () => {
    if (dir) await removeDir(dir)
  })

  it('measures each gateway variant and Mosquitto, side by side', () => {
    expect(results.map((r) => r.name)).toEqual([...VARIANTS.map((v) => `gateway ${v}`), 'mosquitto'])
    expect(results[0]!.variant).toEqual({
      name: 'scrypt14/c2/m32/cache0',
      form: 'scrypt',
      ln: 14,
      concurrency: 2,
      memoryMiB: 32,
      cacheEntries: 0,
    })
    expect(results[1]!.variant).toEqual({ name: 'pepper10', form: 'pepper', ln: 10 })
    const header = stdout.split('\n')[0]!
    for (const r of results) expect(header).toContain(r.name)
    expect(stdout).toContain('last device PUBACK ms')
  })

  it('every device of both kinds publishes in every phase, none fails', () => {
    for (const r of results) {
      for (const phase of ['initial', 'reconnect', 'restart'] as const) {
        for (const kind of ['password', 'psk'] as const) {
          const f = r[phase][kind]
          const where = `${r.name} ${phase} ${kind}: ${JSON.stringify(f)}`
          expect(f.devices, where).toBe(DEVICES)
          expect([f.published, f.failed, f.kept], where).toEqual([DEVICES, 0, 0])
          expect(f.connackP99Ms, where).toBeGreaterThan(0)
          expect(f.pubackP99Ms, where).toBeGreaterThanOrEqual(f.connackP50Ms!)
        }
        expect(r[phase].lastPubackMs, `${r.name} ${phase}`).toBeGreaterThan(0)
      }
    }
  })

  it('the steady devices published before and during, and came back after the restart', () => {
    for (const r of results) {
      expect(r.before.count, r.name).toBeGreaterThan(0)
      expect(r.restart.listeningMs, r.name).toBeGreaterThan(0)
      // CPU time is counted in 10 ms clock ticks: Mosquitto can take a small storm in less than one.
      if (r.name.startsWith('mosquitto')) expect(r.restart.edgeCpuSeconds, r.name).toBeGreaterThanOrEqual(0)
      else expect(r.restart.edgeCpuSeconds, r.name).toBeGreaterThan(0)
      const back = r.restart.steady!.backAfterMs!
      expect(Object.keys(back).sort(), r.name).toEqual(['password', 'psk'])
      for (const ms of Object.values(back)) expect(ms, r.name).toBeGreaterThan(0)
    }
  })
})
