/**
 * The gateway side by side with a Mosquitto edge-to-cloud bridge, on loopback:
 *
 *   npm run build && node bench/run.mjs            # full run (about 10 minutes on 2 cores)
 *   node bench/run.mjs --quick                      # smoke run (about two minutes)
 *
 * Starts everything itself (a PKI, a cloud mosquitto with mutual TLS, a
 * subscriber, then per trial a fresh edge and publisher processes), alternates
 * the systems within each round, prints one table and writes
 * bench/results/latest.json. See docs/performance.md for what it measures.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs, USAGE } from './lib/args.mjs'
import { startCloud, startSubscriber } from './lib/cloud.mjs'
import { makeFixtures } from './lib/fixtures.mjs'
import { gitState } from './lib/git-state.mjs'
import { formatGoals } from './lib/goals.mjs'
import { formatHeadline, headline } from './lib/headline.mjs'
import { LOAD_TEXT } from './lib/plan.mjs'
import { machine } from './lib/proc-stats.mjs'
import { pinProcess } from './lib/processes.mjs'
import { runRounds } from './lib/rounds.mjs'
import { sealingAvailable } from './lib/sealer.mjs'
import { runStormGoal } from './lib/storm-goal.mjs'
import { formatAtRestTable, formatRestartTable, formatTable, formatWireTable } from './lib/table.mjs'
import { formatCells } from './signing.mjs'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const SIGNING = fileURLToPath(new URL('signing.mjs', import.meta.url))

function preflight() {
  if (!existsSync(join(ROOT, 'dist', 'bin', 'edge-gateway.js'))) {
    throw new Error('dist/ is missing: run npm run build first (the bench runs the built gateway from dist/)')
  }
  for (const binary of ['mosquitto', 'mosquitto_passwd', 'taskset']) {
    try {
      execFileSync('which', [binary], { stdio: 'ignore' })
    } catch {
      throw new Error(
        `${binary} is not installed: run npm run test:setup (Debian packages mosquitto, util-linux)`,
      )
    }
  }
}

/**
 * bench/signing.mjs on one core (CPU 1, where nothing of the run is yet), before
 * anything else starts: signing and sealing costs per message, alone.
 */
function signingMicroBench(quick, log) {
  log('signing and sealing micro-benchmark (one core)...')
  const out = spawnSync(
    'taskset',
    ['-c', '1', process.execPath, SIGNING, '--json', '--ms', quick ? '300' : '1000'],
    {
      encoding: 'utf8',
      timeout: 120_000,
    },
  )
  if (out.status !== 0) {
    // The trials still run: the report says the micro-benchmark is missing, and why.
    log(`bench/signing.mjs failed: ${out.stderr || out.error?.message}`)
    return { error: (out.stderr || out.error?.message || `exit ${out.status}`).trim().slice(0, 300) }
  }
  return JSON.parse(out.stdout)
}

async function main() {
  const options = parseArgs(process.argv.slice(2))
  if (options.help) {
    process.stdout.write(USAGE)
    return
  }
  preflight()
  const sealed = options.sealed && sealingAvailable()
  const notes = []
  if (options.sealed && !sealed)
    notes.push('sealed payloads left out: dist/crypto/encrypt0.js is not in this build')
  const startedAt = new Date()
  const log = (line) => process.stderr.write(`${line}\n`)
  const loadBefore = loadavg().map((x) => Math.round(x * 100) / 100)
  const micro = options.micro ? signingMicroBench(options.quick, log) : null
  const fixtures = await makeFixtures()
  const cloud = await startCloud(fixtures)
  const subscriber = await startSubscriber(fixtures, cloud, { verifyEvery: options.verifyEvery })
  let outcome
  try {
    outcome = await runRounds({ fixtures, cloud, subscriber }, { ...options, sealed }, log)
    // Messages that reached the subscriber after their trial's drain had ended: counted as lost too early.
    // Repeats of messages that had arrived in time (a redelivery still on its way) are counted apart.
    const { byTrial, repeatsByTrial } = await subscriber.request({ type: 'late' }, 'late')
    for (const row of outcome.rows) {
      for (const t of row.trials) {
        t.lateArrivals = byTrial[t.trialId] ?? 0
        t.lateRepeats = repeatsByTrial[t.trialId] ?? 0
      }
    }
  } finally {
    subscriber.send({ type: 'exit' })
    await subscriber.stop()
    try {
      pinProcess(cloud.pid, '0-1')
    } catch {
      // pinning back only matters while it runs
    }
    await cloud.stop()
    if (!options.keep) await rm(fixtures.root, { recursive: true, force: true })
    else log(`kept ${fixtures.root}`)
  }
  notes.push(...outcome.notes)
  // The reconnect storm runs after the trials, on its own brokers and devices.
  const storm = options.storm ? await runStormGoal(log) : null
  if (storm?.error) notes.push(`reconnect storm not measured: ${storm.error}`)
  const busy = outcome.rows.filter((r) =>
    r.trials.some((t) => (t.harness?.publisherMaxCore ?? 0) > 0.9 || (t.harness?.subscriberCore ?? 0) > 0.9),
  )
  notes.push(
    `the subscriber verified every ${options.verifyEvery === 1 ? '' : `${options.verifyEvery}-th `}gateway message of each publisher ` +
      "with the project's EnvelopeConsumer (key binding, signature, gateway id, HPKE open) and read the stamp of every " +
      'message from the envelope (opening every HPKE body); Mosquitto rows carry raw payloads, unsigned and unsealed',
  )
  notes.push(
    busy.length > 0
      ? `the harness used more than 90 % of a core in: ${busy.map((r) => `${r.load}/${r.setup}`).join(', ')}`
      : 'no harness process (publisher or subscriber) used more than 90 % of a core in any trial',
  )

  const report = {
    date: startedAt.toISOString(),
    durationSeconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
    machine: machine(),
    loadAverage: { before: loadBefore, after: loadavg().map((x) => Math.round(x * 100) / 100) },
    git: gitState(),
    mosquitto: spawnSync('mosquitto', ['-h'], { encoding: 'utf8', timeout: 5_000 }).stdout.split('\n')[0],
    options: { ...options, sealed },
    notes,
    headline: headline(outcome.rows, {
      atRest: outcome.atRest,
      gatewayQueue: options.gatewayQueue,
      storm: storm?.entry ?? null,
    }),
    signing: micro,
    rows: outcome.rows,
    atRest: outcome.atRest,
    atRestSamples: outcome.atRestSamples,
    wire: outcome.wire,
  }
  const out = options.out ?? join(ROOT, 'bench', 'results', 'latest.json')
  await mkdir(dirname(out), { recursive: true })
  await writeFile(out, `${JSON.stringify(report, null, 2)}\n`)

  const m = report.machine
  const lines = [
    `edge-gateway vs Mosquitto bridge, ${report.date} - ${m.cores} cores, ${m.model}, Node ${m.node}, ${report.mosquitto}` +
      (report.git
        ? `, commit ${report.git.commit}${report.git.changedFiles ? ` + ${report.git.changedFiles} changed files` : ''}`
        : ''),
    `rounds: ${options.repeats}${options.quick ? ' (quick)' : ''}; cells: median (min-max) over rounds; took ${report.durationSeconds} s; ` +
      `load average (1/5/15 min) before ${report.loadAverage.before.join(' ')}, after ${report.loadAverage.after.join(' ')}`,
    '',
    formatTable(report.rows),
  ]
  if (report.atRest.length > 0) {
    lines.push(
      '',
      '### at rest: start-up and resident memory (TLS-PSK, no load)',
      '',
      formatAtRestTable(report.atRest, report.rows),
    )
  }
  const restarts = formatRestartTable(report.rows)
  if (restarts) {
    lines.push(
      '',
      '### restart under load: PUBACK/s per 0.5 s from the new spawn (TLS-PSK, each round)',
      '',
      restarts,
    )
  }
  if (report.wire.length > 0)
    lines.push('', '### bytes on the wire (TCP payload, one device)', '', formatWireTable(report.wire))
  lines.push(
    '',
    'loads: <mode>-q<QoS>-<payload>; 4 publishers (serial: 1);',
    ...Object.entries(LOAD_TEXT).map(([mode, text]) => `  ${mode}: ${text}`),
    '  idle1000: the same fixed rate with 1,000 more devices (250 with --quick) connected and silent',
    '',
    '### headline (2 cores; TLS-PSK, and the full path)',
    '',
    formatHeadline(report.headline),
    '',
    '### issue 14 goals (gateway vs Mosquitto, this run)',
    '',
    formatGoals(report.headline.goals),
  )
  if (micro?.error) notes.push(`the signing micro-benchmark failed: ${micro.error}`)
  else if (micro) {
    lines.push(
      '',
      '### signing and sealing alone (one core, CPU 1, before the trials; median of 3 runs)',
      '',
      formatCells(micro),
    )
  }
  if (notes.length > 0) lines.push('', ...notes.map((n) => `note: ${n}`))
  lines.push('', `JSON: ${out}`)
  process.stdout.write(`${lines.join('\n')}\n`)
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  },
)
