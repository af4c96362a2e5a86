/**
 * The reconnect storm as a line of `npm run bench`'s goals: bench/storm.mjs
 * runs as a child process (its own cloud broker, devices and edges, one after
 * the other after the main trials), and its restart figures become the
 * `storm` entry of bench/lib/goals.mjs.
 */
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const STORM = fileURLToPath(new URL('../storm.mjs', import.meta.url))
/** The storm's phases bound themselves (--deadline-ms per storm); this bounds the whole child. */
const STORM_TIMEOUT_MS = 25 * 60_000
/** Issue 14: every device publishes again within 10 s of the restart. */
export const STORM_GOAL = { kind: 'absolute', op: '<=', value: 10_000 }

/**
 * The storm entry from bench/storm.mjs's JSON report: the gateway's figure is
 * its `pepper10` variant (`$scrypt-pepper$` ln=10, the form for a fleet of
 * password devices), `scrypt14` (the `$scrypt$` default) goes in the notes.
 */
export function stormEntry(report) {
  const results = report?.results ?? []
  const variant = (name) => results.find((r) => r.variant?.name === name)
  const pepper = variant('pepper10')
  const scrypt = variant('scrypt14')
  const mosquitto = results.find((r) => !r.variant)
  const last = (r) => r?.restart?.lastPubackMs ?? null
  const steady = (r) => r?.restart?.steady?.p99Ms ?? null
  const failed = (r) => (r?.restart ? r.restart.password.failed + r.restart.psk.failed : null)
  const notes = [
    `$scrypt$ ln=14 (the default hash): last PUBACK ${last(scrypt) ?? '-'} ms`,
    `steady devices' p99 PUBACK during the storm: gateway ${steady(pepper) ?? '-'} ms, Mosquitto ${steady(mosquitto) ?? '-'} ms`,
  ]
  const failures = [pepper, mosquitto].map(failed)
  if (failures.some((n) => n !== null && n > 0))
    notes.push(`devices that never published again: gateway ${failures[0]}, Mosquitto ${failures[1]}`)
  return {
    what: `reconnect storm after a restart: ms from the spawn to the last PUBACK (${report?.settings?.passwordDevices ?? '?'} password + ${report?.settings?.pskDevices ?? '?'} TLS-PSK devices, $scrypt-pepper$ ln=10)`,
    unit: 'ms',
    gateway: last(pepper),
    mosquitto: last(mosquitto),
    goal: STORM_GOAL,
    notes,
  }
}

/** Runs bench/storm.mjs (its progress on stderr, its table on stdout) and returns the storm entry, or null with why. */
export async function runStormGoal(log) {
  const dir = await mkdtemp(join(tmpdir(), 'edge-gw-bench-storm-'))
  const out = join(dir, 'storm.json')
  try {
    log('reconnect storm: node bench/storm.mjs --variants scrypt14,pepper10 (a few minutes)')
    const child = spawnSync(process.execPath, [STORM, '--variants', 'scrypt14,pepper10', '--json', out], {
      stdio: ['ignore', 'inherit', 'inherit'],
      timeout: STORM_TIMEOUT_MS,
      killSignal: 'SIGTERM',
    })
    if (child.error || child.status === 2 || child.status === null)
      return {
        entry: null,
        error: `bench/storm.mjs failed (${child.error?.message ?? `exit ${child.status}`})`,
      }
    return { entry: stormEntry(JSON.parse(readFileSync(out, 'utf8'))), error: null }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
