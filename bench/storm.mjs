/**
 * Issue 14, item 5: a reconnect storm. An edge (the gateway in one or more
 * variants of its password checking, and the Mosquitto bridge) holds 1,000
 * password devices (plain TCP), 1,000 TLS-PSK devices and 2 steady devices
 * (one of each kind) publishing QoS 1 at a fixed rate. Per edge:
 *
 *   1. all devices connect (the edge idle, freshly started), each publishes
 *      one QoS 1 message; then the steady devices alone for --before-ms;
 *   2. reconnect without restart: every storm device's connection is cut
 *      (as by a Wi-Fi outage), all reconnect at once and publish one QoS 1;
 *   3. restart: SIGTERM, the edge started again on the same ports and state;
 *      once both ports accept, all storm devices reconnect at once and
 *      publish one QoS 1 (the steady devices retry every 100 ms by themselves).
 *
 * Figures: time from the restart (the spawn) to the last storm device's
 * PUBACK; CONNACK time (connection opened to CONNACK) and PUBACK time (from
 * the restart) p50/p99 per kind; the steady devices' p99 PUBACK latency
 * before and during each storm; failures. Printed side by side, and as JSON.
 *
 *   npm run bench:storm                                        # after npm run build
 *   node bench/storm.mjs --variants scrypt14/c2/cache0,pepper10 --json
 *
 * Everything runs on 127.0.0.1, every process is stopped by PID, and each
 * storm has a deadline (--deadline-ms). The harness's devices share the two
 * cores with the edge (as the other benches do).
 */
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { startCloud } from './lib/cloud.mjs'
import { makeFixtures } from './lib/fixtures.mjs'
import { gitState } from './lib/git-state.mjs'
import { cpuSeconds, machine } from './lib/proc-stats.mjs'
import { spawnScript, stopProcess } from './lib/processes.mjs'
import { formatTable, kindFigures, round, steadyFigures } from './lib/storm/figures.mjs'
import {
  gatewayEdge,
  mosquittoEdge,
  parseVariant,
  stormDevices,
  writePepperFile,
} from './lib/storm/setup.mjs'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const script = (name) => fileURLToPath(new URL(`lib/storm/${name}`, import.meta.url))
const now = () => performance.timeOrigin + performance.now()

const USAGE = `node bench/storm.mjs [options]      (after npm run build)

  --variants V[,V]       gateway variants, each <form><ln>[/c<concurrency>][/m<MiB>][/cache<entries>]:
                         scrypt14 ($scrypt$, ln=14), pepper10 ($scrypt-pepper$, ln=10, with
                         lan.passwordPepperFile); /c sets lan.passwordChecks.concurrency, /m
                         lan.passwordChecks.memoryMiB, /cache lan.passwordChecks.cacheEntries;
                         unset: the gateway's default (default: scrypt14/c2/m32/cache0,scrypt14,pepper10)
  --no-mosquitto         leave out the Mosquitto edge
  --password-devices N   password devices on the plain TCP listener (default 1000)
  --psk-devices N        TLS-PSK devices (default 1000, at most 1000)
  --distinct N           distinct passwords among the password devices (default 32)
  --concurrency N        CONNECTs in flight per kind at most, client side (default 1000: all at once)
  --rate N               messages per second of each steady device (default 50)
  --before-ms N          steady devices alone before the storms (default 5000)
  --deadline-ms N        a storm's deadline (default 180000)
  --phases P[,P]         reconnect, restart (default both)
  --json [FILE]          also write the results as JSON (default bench/results/storm.json)
  --keep                 keep the temp folder (configs, logs)
`

function parseArgs(argv) {
  const o = {
    variants: ['scrypt14/c2/m32/cache0', 'scrypt14', 'pepper10'],
    mosquitto: true,
    passwordDevices: 1000,
    pskDevices: 1000,
    distinct: 32,
    concurrency: 1000,
    rate: 50,
    beforeMs: 5000,
    deadlineMs: 180_000,
    phases: ['reconnect', 'restart'],
    json: null,
    keep: false,
    help: false,
  }
  const int = (name, text) => {
    const n = Number(text)
    if (!Number.isInteger(n) || n < 0)
      throw new Error(`Expected ${name} to be a whole number, got ${JSON.stringify(text)}`)
    return n
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const value = () => {
      const v = argv[++i]
      if (v === undefined) throw new Error(`Expected a value after ${a}`)
      return v
    }
    if (a === '--variants') o.variants = value().split(',').filter(Boolean)
    else if (a === '--no-mosquitto') o.mosquitto = false
    else if (a === '--password-devices') o.passwordDevices = int(a, value())
    else if (a === '--psk-devices') o.pskDevices = int(a, value())
    else if (a === '--distinct') o.distinct = Math.max(1, int(a, value()))
    else if (a === '--concurrency') o.concurrency = Math.max(1, int(a, value()))
    else if (a === '--rate') o.rate = Math.max(1, int(a, value()))
    else if (a === '--before-ms') o.beforeMs = int(a, value())
    else if (a === '--deadline-ms') o.deadlineMs = Math.max(1000, int(a, value()))
    else if (a === '--phases') {
      o.phases = value().split(',').filter(Boolean)
      const bad = o.phases.filter((p) => p !== 'reconnect' && p !== 'restart')
      if (bad.length) throw new Error(`unknown phase(s) ${bad.join(', ')}\n${USAGE}`)
    } else if (a === '--json') {
      o.json =
        argv[i + 1] !== undefined && !argv[i + 1].startsWith('--')
          ? argv[++i]
          : join(ROOT, 'bench', 'results', 'storm.json')
    } else if (a === '--keep') o.keep = true
    else if (a === '--help' || a === '-h') o.help = true
    else throw new Error(`unknown option ${a}\n${USAGE}`)
  }
  o.parsedVariants = o.variants.map(parseVariant)
  return o
}

function preflight() {
  if (!existsSync(join(ROOT, 'dist', 'bin', 'edge-gateway.js')))
    throw new Error('dist/ is missing: run npm run build first (the bench runs the built gateway)')
  for (const binary of ['mosquitto', 'mosquitto_passwd']) {
    if (spawnSync('which', [binary], { stdio: 'ignore' }).status !== 0)
      throw new Error(`${binary} is not installed: run npm run test:setup`)
  }
}

/** Both kinds storm at once; resolves with the figures of each, counted from `t0`. */
async function storm(children, t0, deadlineMs) {
  const [password, psk] = await Promise.all(
    children.map((c) => c.request({ type: 'storm', deadlineMs }, 'stormed', deadlineMs + 60_000)),
  )
  const figures = { password: kindFigures(password, t0), psk: kindFigures(psk, t0) }
  const lasts = [figures.password.lastPubackAt, figures.psk.lastPubackAt]
  const allDone = figures.password.failed === 0 && figures.psk.failed === 0
  figures.lastPubackAt = lasts.includes(null) ? null : Math.max(...lasts)
  figures.lastPubackMs = allDone && figures.lastPubackAt !== null ? round(figures.lastPubackAt - t0) : null
  return figures
}

async function measureEdge(edge, devices, options, log) {
  const cleanup = []
  try {
    const first = await edge.start()
    cleanup.push(() => edge.stop())
    log(`${edge.name}: pid ${edge.pid} listening after ${Math.round(first.listeningAt - first.spawnedAt)} ms`)
    const spec = (kind, port, list) => ({
      type: 'init',
      config: { kind, port, devices: list, concurrency: options.concurrency, connackTimeoutMs: 30_000 },
    })
    const children = [
      [spawnScript(script('devices.mjs')), spec('password', edge.tcpPort, devices.password)],
      [spawnScript(script('devices.mjs')), spec('psk', edge.pskPort, devices.psk)],
    ].map(([child, init]) => {
      cleanup.push(() => {
        child.send({ type: 'exit' })
        return stopProcess(child.child, 2_000, 1_000)
      })
      return { child, init }
    })
    for (const { child, init } of children) await child.request(init, 'ready')
    const kids = children.map((c) => c.child)
    const steady = spawnScript(script('steady.mjs'))
    cleanup.push(() => {
      steady.send({ type: 'exit' })
      return stopProcess(steady.child, 2_000, 1_000)
    })
    const sp = devices.steadyPassword
    const sk = devices.steadyPsk
    await steady.request(
      {
        type: 'init',
        config: {
          ratePerSecond: options.rate,
          devices: [
            {
              id: sp.id,
              kind: 'password',
              endpoint: { transport: 'tcp', host: '127.0.0.1', port: edge.tcpPort },
              fields: { clientId: sp.id, username: sp.id, password: sp.password, keepalive: 60 },
            },
            {
              id: sk.id,
              kind: 'psk',
              endpoint: { transport: 'psk', host: '127.0.0.1', port: edge.pskPort, psk: sk.psk },
              fields: { clientId: sk.id, keepalive: 60 },
            },
          ],
        },
      },
      'ready',
      60_000,
    )
    const result = { name: edge.name }

    log(`${edge.name}: first connection of ${devices.password.length + devices.psk.length} devices`)
    const initialAt = now()
    const initial = await storm(kids, initialAt, options.deadlineMs)
    result.initial = { ...strip(initial) }
    log(
      `${edge.name}: all connected after ${initial.lastPubackMs} ms; steady devices alone for ${options.beforeMs} ms`,
    )
    const beforeFrom = now()
    await sleep(options.beforeMs)
    result.before = steadyFigures(
      await steady.request({ type: 'stats', from: beforeFrom, to: now() }, 'stats'),
    )

    if (options.phases.includes('reconnect')) {
      for (const c of kids) await c.request({ type: 'drop' }, 'dropped')
      const cpu0 = cpuSeconds(edge.pid)
      const releasedAt = now()
      const figures = await storm(kids, releasedAt, options.deadlineMs)
      const end = figures.lastPubackAt ?? now()
      result.reconnect = {
        ...strip(figures),
        edgeCpuSeconds: round(cpuSeconds(edge.pid) - cpu0, 2),
        steady: steadyFigures(await steady.request({ type: 'stats', from: releasedAt, to: end }, 'stats')),
      }
      log(`${edge.name}: reconnect without restart: last PUBACK after ${result.reconnect.lastPubackMs} ms`)
      await sleep(1000)
    }

    if (options.phases.includes('restart')) {
      const stopped = await edge.stop()
      const started = await edge.start()
      const cpu0 = cpuSeconds(edge.pid)
      const figures = await storm(kids, started.spawnedAt, options.deadlineMs)
      const end = figures.lastPubackAt ?? now()
      result.restart = {
        ...strip(figures),
        stopMs: round(stopped.stoppedAt - stopped.stoppingAt),
        listeningMs: round(started.listeningAt - started.spawnedAt),
        edgeCpuSeconds: round(cpuSeconds(edge.pid) - cpu0, 2),
        steady: steadyFigures(
          await steadyBack(steady, started.spawnedAt, end, stopped.stoppingAt),
          started.spawnedAt,
        ),
      }
      log(`${edge.name}: restart: last PUBACK ${result.restart.lastPubackMs} ms after the spawn`)
    }
    return result
  } finally {
    for (const step of cleanup.reverse()) await Promise.resolve(step()).catch(() => undefined)
  }
}

/**
 * The steady devices' figures over [from, to] once both have their session back after the restart
 * (a short storm can end before they retry), waiting 30 s at most.
 */
async function steadyBack(steady, from, to, lostSince) {
  const deadline = now() + 30_000
  for (;;) {
    const stats = await steady.request({ type: 'stats', from, to, lostSince }, 'stats')
    const back = Object.values(stats.perDevice).every((d) => d.reconnects.length > 0)
    if (back || now() > deadline) return stats
    await sleep(100)
  }
}

/** The figures without the absolute times. */
function strip(figures) {
  const { lastPubackAt, ...rest } = figures
  const kind = ({ lastPubackAt: _, ...k }) => k
  return { ...rest, password: kind(rest.password), psk: kind(rest.psk) }
}

async function main() {
  const options = parseArgs(process.argv.slice(2))
  if (options.help) {
    process.stdout.write(USAGE)
    return 0
  }
  preflight()
  const log = (line) => process.stderr.write(`[storm ${new Date().toISOString().slice(11, 19)}] ${line}\n`)
  const startedAt = new Date()
  const loadBefore = loadavg().map((x) => round(x, 2))
  log('making fixtures (PKI, device credentials)')
  const fixtures = await makeFixtures()
  const results = []
  let cloud
  try {
    cloud = await startCloud(fixtures)
    const devices = stormDevices(fixtures, options)
    const pepperFile = await writePepperFile(fixtures.root)
    for (const variant of options.parsedVariants) {
      log(`gateway ${variant.name}: hashing ${options.distinct + 1} passwords`)
      const edge = await gatewayEdge({
        fixtures,
        devices,
        variant,
        pepperFile,
        cloudPort: cloud.port,
        dir: join(fixtures.root, `gateway-${variant.name.replaceAll('/', '-')}`),
      })
      results.push({ variant, ...(await measureEdge(edge, devices, options, log)) })
    }
    if (options.mosquitto) {
      const edge = await mosquittoEdge({
        fixtures,
        devices,
        cloudPort: cloud.port,
        dir: join(fixtures.root, 'mosquitto'),
      })
      results.push(await measureEdge(edge, devices, options, log))
    }
  } finally {
    await cloud?.stop()
    if (!options.keep) await rm(fixtures.root, { recursive: true, force: true })
    else log(`kept ${fixtures.root}`)
  }
  const report = {
    date: startedAt.toISOString(),
    durationSeconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
    machine: machine(),
    loadAverage: { before: loadBefore, after: loadavg().map((x) => round(x, 2)) },
    git: gitState(),
    mosquitto: spawnSync('mosquitto', ['-h'], { encoding: 'utf8', timeout: 5_000 }).stdout.split('\n')[0],
    settings: {
      passwordDevices: options.passwordDevices,
      pskDevices: options.pskDevices,
      distinctPasswords: options.distinct,
      clientConcurrencyPerKind: options.concurrency,
      steadyRatePerSecond: options.rate,
      beforeMs: options.beforeMs,
      deadlineMs: options.deadlineMs,
    },
    results,
  }
  let text = `${formatTable(results)}\n`
  if (options.json) {
    await mkdir(dirname(options.json), { recursive: true })
    await writeFile(options.json, `${JSON.stringify(report, null, 2)}\n`)
    text += `\nJSON: ${options.json}\n`
  }
  process.stdout.write(text)
  const failed = results.some((r) =>
    ['initial', 'reconnect', 'restart'].some(
      (p) => r[p] && (r[p].password.failed > 0 || r[p].psk.failed > 0),
    ),
  )
  return failed ? 1 : 0
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`bench/storm.mjs failed: ${err instanceof Error ? err.stack : String(err)}\n`)
    process.exit(2)
  },
)
