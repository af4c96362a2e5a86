/**
 * A longer fuzz run against the built gateway, started as a user would
 * (`node dist/bin/edge-gateway.js start`), with a real cloud mosquitto behind it:
 *
 *   npm run build && node bench/fuzz.mjs                  # 20,000 cases
 *   node bench/fuzz.mjs --cases 100000 --seed 7 --minutes 30
 *
 * The cases come from bench/lib/mqtt-fuzz.mjs (the fuzzer the CI test
 * test/integration/fuzz.test.ts runs for 2,000 cases): mutated packets, half
 * before and half after a clean login, sealed payloads among them. Reports
 * cases sent, gateway crashes (it is restarted and the run goes on), error log
 * lines, whether a good device is still served at the end, and the gateway's
 * memory: RSS idle before, the highest seen, and after the run has settled.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import mqtt from 'mqtt'
import { stringify } from 'yaml'
import { startGateway } from './lib/gateway.mjs'
import { cloudConf, startMosquitto } from './lib/mosquitto.mjs'
import { corpus, runFuzz } from './lib/mqtt-fuzz.mjs'
import { freePort, waitForPort } from './lib/ports.mjs'
import { statusKb } from './lib/proc-stats.mjs'
import { hasExited, stopProcess } from './lib/processes.mjs'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const DIST = new URL('../dist/', import.meta.url)
const ROUND = 1000

const USAGE = `node bench/fuzz.mjs [options]      (after npm run build)

  --cases N        cases to send (default 20000)
  --seed S         first seed; round k uses seed S + k (default 1)
  --concurrency C  connections at a time (default 4)
  --minutes M      stop starting rounds of ${ROUND} after M minutes (default 15)
  --json           one JSON line with the results instead of the report
  --keep           keep the temp folder (configs, logs) for inspection
`

function parseArgs(argv) {
  const options = { cases: 20_000, seed: 1, concurrency: 4, minutes: 15, json: false, keep: false }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const number = () => {
      const value = Number(argv[++i])
      if (!Number.isInteger(value) || value < 0) throw new Error(`${arg} needs a whole number`)
      return value
    }
    if (arg === '--cases') options.cases = number()
    else if (arg === '--seed') options.seed = number()
    else if (arg === '--concurrency') options.concurrency = Math.max(1, number())
    else if (arg === '--minutes') options.minutes = number()
    else if (arg === '--json') options.json = true
    else if (arg === '--keep') options.keep = true
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write(USAGE)
      process.exit(0)
    } else throw new Error(`unknown option ${arg}\n${USAGE}`)
  }
  return options
}

function preflight() {
  if (!existsSync(join(ROOT, 'dist', 'bin', 'edge-gateway.js')))
    throw new Error('dist/ is missing: run npm run build first (the fuzz run starts the built gateway)')
  try {
    execFileSync('which', ['mosquitto'], { stdio: 'ignore' })
  } catch {
    throw new Error('mosquitto is not installed: run npm run test:setup')
  }
}

const FUZZ = {
  clientId: 'fuzz-dev',
  username: 'fuzz-dev',
  password: 'fuzz password',
  topic: 'devices/fuzz-dev',
  sealedTopic: 'devices/fuzz-dev/sealed/kwh',
}
const PRE = {
  clientId: 'fuzz-pre',
  username: 'fuzz-pre',
  password: 'pre password',
  topic: 'devices/fuzz-pre',
  sealedTopic: 'devices/fuzz-pre/sealed/kwh',
}
const GOOD = { username: 'good-dev', password: 'good password' }

async function setUp(dir) {
  const pki = await import(new URL('pki/index.js', DIST).href)
  const { hashPassword } = await import(new URL('gateway/index.js', DIST).href)
  const ca = pki.createCertificateAuthority({ commonName: 'edge-gateway fuzz CA' })
  const files = {
    caFile: join(dir, 'ca.pem'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server.key'),
    edgeCert: join(dir, 'edge.pem'),
    edgeKey: join(dir, 'edge.key'),
  }
  await pki.writePublicFile(files.caFile, ca.certPem)
  const server = pki.issueCertificate(ca, {
    commonName: 'cloud',
    kind: 'server',
    altNames: ['127.0.0.1', 'localhost'],
  })
  await pki.writePublicFile(files.serverCert, server.certPem)
  await pki.writeSecretFile(files.serverKey, server.keyPem)
  const edge = pki.issueCertificate(ca, { commonName: 'edge-gateway', kind: 'client' })
  await pki.writePublicFile(files.edgeCert, edge.certPem)
  await pki.writeSecretFile(files.edgeKey, edge.keyPem)
  const secrets = { fuzz: '8899aabbccddeeff0011223344556677', pre: '00112233445566778899aabbccddeeff' }
  await pki.writeSecretFile(join(dir, 'fuzz.key'), secrets.fuzz)
  await pki.writeSecretFile(join(dir, 'pre.key'), secrets.pre)

  const cloudDir = join(dir, 'cloud')
  await mkdir(cloudDir, { mode: 0o700 })
  const cloudPort = await freePort()
  const confFile = join(cloudDir, 'mosquitto.conf')
  await writeFile(
    confFile,
    cloudConf({
      dir: cloudDir,
      port: cloudPort,
      pki: { caFile: files.caFile, serverCertFile: files.serverCert, serverKeyFile: files.serverKey },
    }),
  )
  const cloud = startMosquitto({ dir: cloudDir, confFile })
  await waitForPort(cloudPort, { gone: () => hasExited(cloud), what: 'the cloud mosquitto' })

  // The cheapest scrypt the gateway accepts: thousands of logins, not a password test.
  const cheap = { ln: 10, r: 8, p: 1 }
  const tcpPort = await freePort()
  const config = {
    gateway: { id: 'edge-gateway', stateDir: 'state' },
    log: { level: 'info', pretty: false },
    lan: {
      listeners: [
        { name: 'lan-plain', type: 'tcp', host: '127.0.0.1', port: tcpPort },
        { name: 'lan-psk', type: 'tls-psk', host: '127.0.0.1', port: await freePort() },
      ],
      protection: [{ topic: 'devices/+/sealed/#', mode: 'sealed' }],
    },
    devices: [
      {
        id: FUZZ.clientId,
        username: FUZZ.username,
        passwordHash: await hashPassword(FUZZ.password, cheap),
        clientIds: ['fuzz-dev*'],
        payloadKey: { kid: '0f', secretFile: join(dir, 'fuzz.key') },
      },
      {
        id: PRE.clientId,
        username: PRE.username,
        passwordHash: await hashPassword(PRE.password, cheap),
        clientIds: ['fuzz-pre*'],
        payloadKey: { kid: '0e', secretFile: join(dir, 'pre.key') },
      },
      { id: 'good-dev', username: GOOD.username, passwordHash: await hashPassword(GOOD.password, cheap) },
    ],
    cloud: {
      host: '127.0.0.1',
      port: cloudPort,
      servername: 'localhost',
      caFile: files.caFile,
      certFile: files.edgeCert,
      keyFile: files.edgeKey,
      topics: [{ local: 'devices/', cloud: 'gateways/fuzz/devices/' }],
    },
  }
  const configFile = join(dir, 'gateway.yaml')
  await writeFile(configFile, stringify(config), { mode: 0o600 })
  return { cloud, configFile, tcpPort, secrets }
}

async function sealer(secrets) {
  const { deriveContext } = await import(new URL('crypto/context.js', DIST).href)
  const { seal } = await import(new URL('crypto/encrypt0.js', DIST).href)
  const { Alg } = await import(new URL('crypto/types.js', DIST).href)
  const context = (kid, hex) =>
    deriveContext({
      kid: Buffer.from([kid]),
      masterSecret: Buffer.from(hex, 'hex'),
      aead: Alg.AES_CCM_16_64_128,
    })
  const fuzz = context(0x0f, secrets.fuzz)
  const pre = context(0x0e, secrets.pre)
  let seq = 0
  return (topic) =>
    seal(topic.startsWith(PRE.topic) ? pre : fuzz, 'device-to-gateway', ++seq, Buffer.from('kwh=1'), topic)
}

const rssMb = (pid) => {
  const kb = statusKb(pid, 'VmRSS')
  return kb === null ? null : Math.round(kb / 1024)
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** A device that logs in cleanly and publishes at QoS 1: true when the PUBACK comes. */
async function goodDeviceServed(port) {
  try {
    const client = await mqtt.connectAsync({
      host: '127.0.0.1',
      port,
      username: GOOD.username,
      password: GOOD.password,
      clientId: 'good-dev',
      reconnectPeriod: 0,
      connectTimeout: 5000,
    })
    await client.publishAsync('devices/good-dev/after-fuzz', 'still here', { qos: 1 })
    await client.endAsync()
    return true
  } catch {
    return false
  }
}

async function main() {
  const options = parseArgs(process.argv.slice(2))
  preflight()
  const log = options.json ? () => undefined : (line) => process.stdout.write(`${line}\n`)
  const dir = await mkdtemp(join(tmpdir(), 'edge-gw-fuzz-'))
  const logFile = join(dir, 'gateway.log')
  let gateway
  let cloud
  try {
    const setup = await setUp(dir)
    cloud = setup.cloud
    const start = async () => {
      const child = startGateway({ dir, configFile: setup.configFile, logFile })
      await waitForPort(setup.tcpPort, { gone: () => hasExited(child), what: 'the gateway' })
      return child
    }
    gateway = await start()
    await sleep(2000)
    const rssIdle = rssMb(gateway.pid)
    const base = corpus(FUZZ, await sealer(setup.secrets), PRE)
    log(`gateway pid ${gateway.pid}, RSS idle ${rssIdle} MB; ${options.cases} cases, seed ${options.seed}`)

    const totals = { sent: 0, before: 0, after: 0, closedByGateway: 0, authFailed: 0 }
    let crashes = 0
    let rssPeak = rssIdle ?? 0
    const sampler = setInterval(() => {
      const now = gateway && rssMb(gateway.pid)
      if (now !== null && now !== undefined) rssPeak = Math.max(rssPeak, now)
    }, 200)
    const started = Date.now()
    const stopAt = started + options.minutes * 60_000
    for (let round = 0; totals.sent < options.cases && Date.now() < stopAt; round++) {
      const result = await runFuzz({
        port: setup.tcpPort,
        seed: options.seed + round,
        cases: Math.min(ROUND, options.cases - totals.sent),
        concurrency: options.concurrency,
        deadline: stopAt,
        base,
        beforeAddress: '127.0.0.2',
      })
      for (const key of Object.keys(totals)) totals[key] += result[key]
      if (hasExited(gateway)) {
        crashes++
        log(
          `round ${round} (seed ${options.seed + round}): the gateway exited (${gateway.exitCode ?? gateway.signalCode}); restarting`,
        )
        gateway = await start()
      }
      log(
        `round ${round}: ${totals.sent} cases in ${Math.round((Date.now() - started) / 1000)} s, RSS ${rssMb(gateway.pid)} MB (peak ${rssPeak} MB)`,
      )
    }
    clearInterval(sampler)
    const served = await goodDeviceServed(setup.tcpPort)
    await sleep(5000)
    const rssAfter = rssMb(gateway.pid)
    const hwm = statusKb(gateway.pid, 'VmHWM')
    const lines = readFileSync(logFile, 'utf8').split('\n')
    const errors = lines.filter((l) => /"level":(50|60)/.test(l))
    const guard = {}
    for (const line of lines) {
      const m = /"event":"(protocol_violation|packet_too_large)".*?"reason":"([a-z_]+)"/.exec(line)
      if (m) guard[m[2]] = (guard[m[2]] ?? 0) + 1
    }
    const results = {
      cases: totals.sent,
      before: totals.before,
      after: totals.after,
      closedByGateway: totals.closedByGateway,
      authFailed: totals.authFailed,
      crashes,
      errorLines: errors.length,
      goodDeviceServed: served,
      seconds: Math.round((Date.now() - started) / 1000),
      rssMb: {
        idle: rssIdle,
        peak: rssPeak,
        after: rssAfter,
        vmHwm: hwm === null ? null : Math.round(hwm / 1024),
      },
      refusedByGuard: guard,
    }
    if (options.json) process.stdout.write(`${JSON.stringify(results)}\n`)
    else {
      log('')
      log(
        `cases            ${results.cases} (${results.before} before, ${results.after} after authentication) in ${results.seconds} s`,
      )
      log(
        `closed by gw     ${results.closedByGateway}; logins refused to the fuzzing device: ${results.authFailed}`,
      )
      log(
        `crashes          ${crashes}; error log lines: ${errors.length}${errors.length ? `\n  ${errors.slice(0, 5).join('\n  ')}` : ''}`,
      )
      log(`good device      ${served ? 'served (PUBACK)' : 'NOT served'}`)
      log(
        `gateway RSS      idle ${rssIdle} MB, peak ${rssPeak} MB (VmHWM ${results.rssMb.vmHwm} MB), after ${rssAfter} MB`,
      )
      log(
        `refused by guard ${Object.entries(guard)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}`,
      )
      if (options.keep) log(`kept: ${dir}`)
    }
    process.exitCode = crashes === 0 && errors.length === 0 && served && totals.authFailed === 0 ? 0 : 1
  } finally {
    await stopProcess(gateway)
    await stopProcess(cloud)
    if (!options.keep) await rm(dir, { recursive: true, force: true })
  }
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`)
  process.exit(2)
})
