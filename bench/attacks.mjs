/**
 * Issue 13's acceptance measurement: the gateway, as a user runs it (default
 * settings but for listeners, devices and cloud), under one attack at a time
 * while two legitimate devices keep publishing QoS 1.
 *
 *   npm run bench:attacks                 # full run (about 6 minutes, more while a backlog drains)
 *   node bench/attacks.mjs --quick        # short run (about 3 minutes)
 *
 * Everything runs on 127.0.0.1 (each attacker binds its own loopback
 * address): a cloud mosquitto with mutual TLS, a subscriber counting every
 * message by device and sequence number, the gateway (`node dist/bin/edge-gateway.js
 * start`), the legitimate devices and the attacker in their own processes.
 * Per attack: the legitimate p99 against the quiet p99, gateway RSS (before,
 * max during, after a settle period), the legitimate messages acknowledged
 * during it and whether they all reached the cloud, and whether a TLS-PSK
 * device can still connect (bench/lib/attacks/report.mjs has the goals). Exit
 * code 1 when a goal fails, unless --report-only; 2 when the run itself failed.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ATTACKS } from './lib/attacks/catalog.mjs'
import { acknowledgedCounts, delivery, waitDelivered } from './lib/attacks/delivery.mjs'
import { linkStatus, medianOf, queueDepth, readStatus } from './lib/attacks/monitor.mjs'
import { describeOutcome, failedGoals, formatReport, GOALS, mib } from './lib/attacks/report.mjs'
import { runAttacks } from './lib/attacks/run.mjs'
import { DEVICE_INDEX, FLOODER, makeSetup } from './lib/attacks/setup.mjs'
import { startAll } from './lib/attacks/start.mjs'
import { gitState } from './lib/git-state.mjs'
import { machine } from './lib/proc-stats.mjs'
import { hasExited } from './lib/processes.mjs'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

const USAGE = `node bench/attacks.mjs [options]      (after npm run build)

  --quick          short phases (6 s attacks, 1,000 idle sockets, 500 malformed cases)
  --only A[,A]     only these attacks: ${ATTACKS.map((a) => a.name).join(', ')}
  --json           also write the results as JSON (bench/results/attacks.json, or --out)
  --out FILE       where --json writes
  --report-only    exit 0 even when a goal fails (exit 2 still means the run itself failed)
  --keep           keep the temp folder (configs, gateway log) for inspection
`

/** Phase lengths (ms) and the bounds of the waits for the uplink to drain. */
const TIMES = {
  quick: {
    warmupMs: 3_000,
    idleMs: 2_000,
    quietMs: 6_000,
    attackMs: 6_000,
    settleMs: 5_000,
    drainMaxMs: 45_000,
    stallMs: 10_000,
  },
  full: {
    warmupMs: 5_000,
    idleMs: 3_000,
    quietMs: 15_000,
    attackMs: 15_000,
    settleMs: 10_000,
    drainMaxMs: 240_000,
    stallMs: 20_000,
  },
}
const RATE_PER_SECOND = 50

function parseArgs(argv) {
  const o = { quick: false, only: null, json: false, out: null, reportOnly: false, keep: false, help: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--quick') o.quick = true
    else if (a === '--json') o.json = true
    else if (a === '--report-only') o.reportOnly = true
    else if (a === '--keep') o.keep = true
    else if (a === '--help' || a === '-h') o.help = true
    else if (a === '--out') o.out = argv[++i]
    else if (a === '--only')
      o.only = String(argv[++i] ?? '')
        .split(',')
        .filter(Boolean)
    else throw new Error(`unknown option ${a}\n${USAGE}`)
  }
  const unknown = (o.only ?? []).filter((n) => !ATTACKS.some((a) => a.name === n))
  if (unknown.length) throw new Error(`unknown attack(s) ${unknown.join(', ')}\n${USAGE}`)
  return o
}

function preflight() {
  if (!existsSync(join(ROOT, 'dist', 'bin', 'edge-gateway.js')))
    throw new Error('dist/ is missing: run npm run build first (the bench runs the built gateway)')
  try {
    execFileSync('which', ['mosquitto'], { stdio: 'ignore' })
  } catch {
    throw new Error('mosquitto is not installed: run npm run test:setup')
  }
}

const round2 = (xs) => xs.map((x) => Math.round(x * 100) / 100)

async function measure(setup, options, log) {
  const times = options.quick ? TIMES.quick : TIMES.full
  const cleanup = []
  try {
    const run = await startAll(setup, { ratePerSecond: RATE_PER_SECOND, cleanup, log })
    const attacks = ATTACKS.filter((a) => !options.only || options.only.includes(a.name))
    const outcome = await runAttacks({ ...run, times, attacks, quick: options.quick, log })
    const rssEndMiB = mib(medianOf(run.rss.between(performance.now() - 2_000, performance.now())))

    log('stopping the legitimate devices; waiting for every acknowledged message to reach the cloud')
    const legitStopped = await run.legit.request({ type: 'stop' }, 'stopped', 30_000)
    const flooderAcks = await run.attacker.request({ type: 'flooder' }, 'flooder', 30_000)
    const flooderIndex = DEVICE_INDEX[FLOODER]
    const want = acknowledgedCounts(legitStopped, flooderAcks, flooderIndex)
    const finalWait = await waitDelivered(run.subscriber, want, times)
    const received = await run.subscriber.request({ type: 'result' }, 'result', 30_000)
    const status = readStatus(run.statusFile)
    const d = delivery({
      legitStopped,
      flooderAcks,
      flooderIndex,
      received,
      phaseCount: outcome.phases.length,
    })
    for (const row of outcome.rows) {
      if (row.phase === undefined) continue
      row.lostDuring = d.lostByPhase[row.phase]
      row.ackedDuring = d.ackedByPhase[row.phase]
      row.outcome = describeOutcome(row.attack, row.result)
    }
    outcome.finish(outcome.rows)
    return {
      times,
      ratePerSecond: RATE_PER_SECOND,
      gatewayExited: hasExited(run.gateway)
        ? { code: run.gateway.exitCode, signal: run.gateway.signalCode }
        : null,
      gatewayFileLimits: run.gatewayFileLimits,
      quiet: outcome.quiet,
      rssIdleMiB: outcome.rssIdleMiB,
      rssEndMiB,
      rows: outcome.rows,
      phases: outcome.phases,
      delivery: {
        ...d,
        finalWait,
        queueDepthAtEnd: queueDepth(status),
        link: linkStatus(status),
        duplicates: received.duplicates,
        foreign: received.foreign,
      },
    }
  } finally {
    for (const step of cleanup.reverse()) await Promise.resolve(step()).catch(() => undefined)
  }
}

async function main() {
  const options = parseArgs(process.argv.slice(2))
  if (options.help) {
    process.stdout.write(USAGE)
    return 0
  }
  preflight()
  const log = (line) => process.stderr.write(`[attacks ${new Date().toISOString().slice(11, 19)}] ${line}\n`)
  const startedAt = new Date()
  const loadBefore = round2(loadavg())
  const setup = await makeSetup()
  let measured
  try {
    measured = await measure(setup, options, log)
  } finally {
    if (!options.keep) await rm(setup.root, { recursive: true, force: true })
    else log(`kept ${setup.root}`)
  }
  const report = {
    date: startedAt.toISOString(),
    durationSeconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
    mode: options.quick ? 'quick' : 'full',
    machine: machine(),
    loadAverage: { before: loadBefore, after: round2(loadavg()) },
    git: gitState(),
    mosquitto: spawnSync('mosquitto', ['-h'], { encoding: 'utf8', timeout: 5_000 }).stdout.split('\n')[0],
    goals: GOALS,
    attacks: ATTACKS.filter((a) => !options.only || options.only.includes(a.name)).map((a) => a.name),
    ...measured,
  }
  report.failedGoals = failedGoals(report)
  let text = formatReport(report)
  if (options.json) {
    const out = options.out ?? join(ROOT, 'bench', 'results', 'attacks.json')
    await mkdir(dirname(out), { recursive: true })
    await writeFile(out, `${JSON.stringify(report, null, 2)}\n`)
    text += `\nJSON: ${out}\n`
  }
  process.stdout.write(text)
  return report.failedGoals.length > 0 && !options.reportOnly ? 1 : 0
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`bench/attacks.mjs failed: ${err instanceof Error ? err.stack : String(err)}\n`)
    process.exit(2)
  },
)
