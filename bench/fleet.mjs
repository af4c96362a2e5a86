/**
 * `npm run bench:fleet`: the cloud side at fleet scale (issue 18, docs/scaling.md). Verified
 * messages per second for `--gateways` simulated gateways (bench/lib/fleet.mjs) through
 *   - the single-process consumer (`cloud consume`, de-duplication in its memory), the baseline, and
 *   - a consumer group of 1, 2 and 4 members (`cloud consume` with group:, state in Redis, output
 *     to a Redis stream, exactly once),
 * each in the same run against the same mosquitto and redis-server on loopback ports.
 *
 * Each trial: the consumers start and subscribe, are stopped (SIGSTOP), the simulator publishes the
 * whole load (the broker queues it for them), the consumers are continued (SIGCONT), and the trial
 * times how long they take to verify and deliver all of it. So the figure is the consumer side's
 * alone, not the simulator's signing. CPU seconds and peak memory of every process are read from /proc.
 *
 *   node bench/fleet.mjs [--gateways 1000] [--per-gateway 20] [--members 1,2,4] [--repeats 1] [--json FILE]
 */
import { spawn } from 'node:child_process'
import { createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { makeFleet, simulateFleet, startRedis, writeConsumerConfig } from './lib/fleet.mjs'
import { cloudConf } from './lib/mosquitto.mjs'
import { freePort, waitForPort } from './lib/ports.mjs'
import { cpuSeconds, machine, statusKb } from './lib/proc-stats.mjs'
import { spawnServer, stopProcess } from './lib/processes.mjs'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
/** The bundled CLI, as installed; EDGE_GATEWAY_FLEET_CLI=dist/cli/main.js profiles with readable names. */
const CLI = process.env.EDGE_GATEWAY_FLEET_CLI ?? join(ROOT, 'dist', 'bin', 'edge-gateway.js')

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? fallback : process.argv[i + 1]
}
const GATEWAYS = Number(option('gateways', '1000'))
const PER_GATEWAY = Number(option('per-gateway', '20'))
const MEMBERS = option('members', '1,2,4').split(',').map(Number)
const REPEATS = Number(option('repeats', '1'))
const JSON_OUT = option('json', undefined)
const FAULTS = !process.argv.includes('--no-faults')
const TRIAL_TIMEOUT_MS = 180_000
/**
 * Node options for the consumers: those of the CLI's own first line (`#!/usr/bin/env -S node ...`,
 * what an installed `edge-gateway` runs with), then EDGE_GATEWAY_FLEET_NODE_ARGS (e.g. --cpu-prof).
 */
const NODE_ARGS = [
  ...(/^#!.*\bnode\b(.*)$/m.exec(readFileSync(CLI, 'utf8').slice(0, 200))?.[1] ?? '').split(' '),
  ...(process.env.EDGE_GATEWAY_FLEET_NODE_ARGS ?? '').split(' '),
].filter(Boolean)

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** A consumer process: `cloud consume` with its stderr and stdout lines counted. */
function startConsumer(config, member, extra = []) {
  const child = spawn(
    process.execPath,
    [...NODE_ARGS, CLI, 'cloud', 'consume', '-c', config, ...(member ? ['--member', member] : []), ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  const c = { child, lines: 0, stderr: '', ready: false }
  let partial = ''
  child.stdout.setEncoding('utf8').on('data', (chunk) => {
    const text = partial + chunk
    const parts = text.split('\n')
    partial = parts.pop() ?? ''
    for (const line of parts) if (line.startsWith('{"kind":"message"')) c.lines++
  })
  child.stderr.setEncoding('utf8').on('data', (chunk) => {
    c.stderr += chunk
    if (c.stderr.length > 64 * 1024) c.stderr = c.stderr.slice(-32 * 1024)
    if (/"event":"consuming"|^consuming /m.test(c.stderr)) c.ready = true
  })
  return c
}

async function waitFor(condition, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await sleep(20)
  }
}

/** Ed25519 verification alone, per message, on this machine (what every consumer does per message). */
function verifyMicroseconds() {
  const { privateKey } = generateKeyPairSync('ed25519')
  const publicKey = createPublicKey(privateKey)
  const data = Buffer.alloc(160, 1)
  const signature = sign(null, data, privateKey)
  const n = 20_000
  for (let i = 0; i < 2000; i++) verify(null, data, publicKey, signature)
  const t = performance.now()
  for (let i = 0; i < n; i++) verify(null, data, publicKey, signature)
  return ((performance.now() - t) * 1000) / n
}

/**
 * A group of 3 under a live load while one member is killed -9 (and stays away) and Redis is
 * killed -9 and started again: what was lost (must be nothing), what was flagged, how long the
 * output paused and how long the dead member's sessions waited for an adopter.
 */
async function faultTrial({ dir, fleet, brokerPort, redisPort, redis, redisChild }) {
  const rate = 500
  const perGateway = Math.max(1, Math.round((rate * 24) / fleet.gateways.length))
  const stream = 'faults:messages'
  const config = await writeConsumerConfig(dir, 'consumer-faults', {
    fleet,
    brokerPort,
    redisPort,
    group: 'faults',
    output: 'stream',
    stream,
  })
  const members = ['m1', 'm2', 'm3'].map((m) => startConsumer(config, m, ['--show-duplicates']))
  await waitFor(() => members.every((c) => c.ready), 30_000, 'faults: members ready')
  const t0 = performance.now()
  const at = () => (performance.now() - t0) / 1000
  let simulated
  const simulation = simulateFleet({
    fleet,
    brokerPort,
    perGateway,
    connections: 4,
    rate,
    resendEvery: 50,
    reorder: 8,
  }).then((r) => {
    simulated = { ...r, endedAt: at() }
  })
  const killAt = 6
  const redisAt = 12
  const redisDownSeconds = 2
  await sleep(killAt * 1000)
  members[1].child.kill('SIGKILL')
  const killedAt = Date.now()
  if (process.env.EDGE_GATEWAY_FLEET_DEBUG)
    process.stderr.write(`m2 killed at ${new Date(killedAt).toISOString()}\n`)
  await sleep((redisAt - killAt) * 1000)
  redisChild.kill('SIGKILL')
  await new Promise((r) =>
    redisChild.exitCode !== null || redisChild.signalCode !== null ? r() : redisChild.once('exit', r),
  )
  await sleep(redisDownSeconds * 1000)
  const restarted = await startRedis({ dir: join(dir, 'redis'), port: redisPort })
  // When the first of m2's sessions was adopted, from the adopter's log line.
  const adoptedAt = () => {
    const times = members
      .flatMap((c) => c.stderr.split('\n'))
      .filter((l) => l.includes('"session_adopted"'))
      .map((l) => Date.parse(JSON.parse(l).time))
    return times.length > 0 ? Math.min(...times) : undefined
  }
  await waitFor(
    () => simulated !== undefined && adoptedAt() !== undefined,
    120_000,
    'faults: simulator done and sessions adopted',
  )
  await simulation
  const expected = simulated.unique
  const entries = async () => {
    const all = []
    let from = '-'
    for (;;) {
      const batch = await redis.xrange(stream, from, '+', 'COUNT', 5000)
      for (const [id, fields] of batch) {
        const e = { id }
        for (let i = 0; i < fields.length; i += 2) e[fields[i]] = fields[i + 1]
        all.push(e)
      }
      if (batch.length < 5000) return all
      from = `(${batch[batch.length - 1][0]}`
    }
  }
  let all = []
  const deadline = Date.now() + 120_000
  for (;;) {
    all = await entries()
    if (all.filter((e) => e.duplicate !== '1').length >= expected || Date.now() > deadline) break
    await sleep(250)
  }
  const drained = at()
  const firsts = all.filter((e) => e.duplicate !== '1')
  const keys = new Set(firsts.map((e) => `${e.gateway}/${e.seq}`))
  let lost = 0
  for (const g of fleet.gateways) for (let q = 1; q <= perGateway; q++) if (!keys.has(`${g.id}/${q}`)) lost++
  const times = all.map((e) => Number(e.id.split('-')[0])).sort((a, b) => a - b)
  let gap = 0
  for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i] - times[i - 1])
  for (const c of members) await stopProcess(c.child)
  if (process.env.EDGE_GATEWAY_FLEET_DEBUG) for (const c of members) process.stderr.write(c.stderr)
  await redis.flushdb()
  const round = (x) => Math.round(x * 10) / 10
  return {
    redisChild: restarted,
    rate,
    messages: expected,
    resent: simulated.resent,
    deliveredOnce:
      keys.size === firsts.length ? keys.size : `${keys.size} (${firsts.length - keys.size} twice)`,
    lost,
    flaggedDuplicates: all.length - firsts.length,
    killAt,
    redisAt,
    redisDownSeconds,
    adoptedAfterSeconds: round((adoptedAt() - killedAt) / 1000),
    longestGapSeconds: round(gap / 1000),
    drainSeconds: round(drained - simulated.endedAt),
  }
}

async function main() {
  const dir = await mkdtemp(join(tmpdir(), 'eg-fleet-'))
  const started = Date.now()
  const results = []
  let broker
  let redisChild
  let redis
  try {
    process.stderr.write(`fleet: making ${GATEWAYS} simulated gateways (keys, certificates, bindings)\n`)
    const fleet = await makeFleet(join(dir, 'pki'), GATEWAYS)
    const brokerPort = await freePort()
    await writeFile(join(dir, 'mosquitto.conf'), cloudConf({ dir, port: brokerPort, pki: fleet }))
    broker = spawnServer('mosquitto', ['-c', join(dir, 'mosquitto.conf')], {
      logFile: join(dir, 'mosquitto.out'),
    })
    await waitForPort(brokerPort, { gone: () => broker.exitCode !== null, what: 'mosquitto' })
    const redisPort = await freePort()
    redisChild = await startRedis({ dir: join(dir, 'redis'), port: redisPort })
    redis = new Redis({ host: '127.0.0.1', port: redisPort, lazyConnect: true })
    redis.on('error', () => undefined)
    await redis.connect()
    const verifyUs = verifyMicroseconds()

    const setups = [
      { name: 'single process (memory)', members: 0 },
      ...MEMBERS.map((m) => ({ name: `group of ${m}`, members: m })),
    ]
    let trialNo = 0
    for (let round = 1; round <= REPEATS; round++) {
      for (const setup of setups) {
        trialNo++
        const group = setup.members > 0 ? `t${trialNo}` : undefined
        const stream = group ? `${group}:messages` : undefined
        const config = await writeConsumerConfig(dir, `consumer-${trialNo}`, {
          fleet,
          brokerPort,
          redisPort,
          ...(group && { group, output: 'stream', stream }),
        })
        const consumers =
          setup.members === 0
            ? [startConsumer(config)]
            : Array.from({ length: setup.members }, (_, i) => startConsumer(config, `m${i + 1}`))
        await waitFor(() => consumers.every((c) => c.ready), 30_000, `${setup.name}: consumers ready`)
        // The retained key bindings reach the consumers before they are stopped.
        for (const c of consumers) c.child.kill('SIGSTOP')
        const sim = await simulateFleet({ fleet, brokerPort, perGateway: PER_GATEWAY, connections: 4 })
        const count = async () =>
          stream ? Number(await redis.xlen(stream)) : consumers.reduce((n, c) => n + c.lines, 0)
        const cpu0 = consumers.map((c) => cpuSeconds(c.child.pid))
        const redisCpu0 = cpuSeconds(redisChild.pid)
        const brokerCpu0 = cpuSeconds(broker.pid)
        const t0 = performance.now()
        for (const c of consumers) c.child.kill('SIGCONT')
        await waitFor(
          async () => (await count()) >= sim.unique,
          TRIAL_TIMEOUT_MS,
          `${setup.name}: all delivered`,
        )
        const seconds = (performance.now() - t0) / 1000
        const delivered = await count()
        const memberCpu = consumers.map((c, i) => (cpuSeconds(c.child.pid) ?? 0) - (cpu0[i] ?? 0))
        const peakMiB = consumers.map((c) => Math.round((statusKb(c.child.pid, 'VmHWM') ?? 0) / 102.4) / 10)
        const result = {
          round,
          setup: setup.name,
          members: setup.members,
          gateways: sim.gateways,
          messages: sim.unique,
          delivered,
          seconds: Math.round(seconds * 1000) / 1000,
          perSecond: Math.round(sim.unique / seconds),
          consumerCpuSeconds: Math.round(memberCpu.reduce((a, b) => a + b, 0) * 100) / 100,
          redisCpuSeconds: Math.round(((cpuSeconds(redisChild.pid) ?? 0) - (redisCpu0 ?? 0)) * 100) / 100,
          brokerCpuSeconds: Math.round(((cpuSeconds(broker.pid) ?? 0) - (brokerCpu0 ?? 0)) * 100) / 100,
          peakMiBPerConsumer: peakMiB,
        }
        results.push(result)
        process.stderr.write(`${JSON.stringify(result)}\n`)
        for (const c of consumers) await stopProcess(c.child)
        if (group) await redis.flushdb()
      }
    }

    const load = loadavg().map((x) => x.toFixed(2))
    const m = machine()
    const lines = [
      `fleet bench: ${GATEWAYS} simulated gateways x ${PER_GATEWAY} messages (64-byte bodies, Ed25519-signed envelopes), ${m.cores} cores (${m.model}), Node ${m.node}, load average ${load.join(' ')}`,
      `Ed25519 verification alone: ${verifyUs.toFixed(1)} us per message (one core)`,
      `consumers run as \`node ${[...NODE_ARGS, CLI.replace(ROOT, '')].join(' ')} cloud consume\``,
      '',
      '| consumers | round | msg/s | vs single process | seconds | consumer CPU s per 10k | Redis CPU s per 10k | broker CPU s per 10k | peak MiB per consumer |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ]
    for (const r of results) {
      const base = results.find((b) => b.round === r.round && b.members === 0)
      const per10k = (s) => ((s / r.messages) * 10_000).toFixed(2)
      lines.push(
        `| ${r.setup} | ${r.round} | ${r.perSecond} | ${base ? `${(r.perSecond / base.perSecond).toFixed(2)}x` : '-'} | ${r.seconds} | ${per10k(r.consumerCpuSeconds)} | ${per10k(r.redisCpuSeconds)} | ${per10k(r.brokerCpuSeconds)} | ${r.peakMiBPerConsumer.join(', ')} |`,
      )
    }
    let faults
    if (FAULTS) {
      faults = await faultTrial({ dir, fleet, brokerPort, redisPort, redis, redisChild })
      redisChild = faults.redisChild
      delete faults.redisChild
      process.stderr.write(`${JSON.stringify(faults)}\n`)
      lines.push(
        '',
        `Faults (a group of 3, ${faults.messages} messages at ${faults.rate}/s, member m2 killed -9 at ${faults.killAt} s and not restarted, Redis killed -9 at ${faults.redisAt} s and started again ${faults.redisDownSeconds} s later on its append-only file):`,
        '',
        '| delivered once | lost | re-sent by the simulator | flagged duplicate | m2 killed -> its sessions adopted | longest pause in the output | last message after the simulator finished |',
        '| --- | --- | --- | --- | --- | --- | --- |',
        `| ${faults.deliveredOnce} of ${faults.messages} | ${faults.lost} | ${faults.resent} | ${faults.flaggedDuplicates} | ${faults.adoptedAfterSeconds} s | ${faults.longestGapSeconds} s | ${faults.drainSeconds} s |`,
      )
    }
    lines.push('', `(${Math.round((Date.now() - started) / 1000)} s in all)`)
    process.stdout.write(`${lines.join('\n')}\n`)
    if (JSON_OUT) await writeFile(JSON_OUT, JSON.stringify({ verifyUs, results, faults }, null, 2))
  } finally {
    redis?.disconnect()
    await stopProcess(redisChild)
    await stopProcess(broker)
    await rm(dir, { recursive: true, force: true })
  }
}

await main()
