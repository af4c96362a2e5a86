/**
 * What bench/storm.mjs runs: the storm's device credentials (for both
 * systems, the same secrets in each one's format), the variants of the
 * gateway's password checking, and each edge started, stopped and started
 * again on the same ports and state folder.
 *
 * Hashes: the password devices share `distinct` passwords (device i has
 * password i % distinct), each hashed once per hash form with the real cost
 * parameters and a fresh salt. Checking a hash costs the same whoever else
 * has it, and the gateway's verified-password cache is keyed by device id
 * (and the password), so sharing hashes saves the harness minutes of scrypt
 * and changes nothing the gateway does.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmod, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { gatewayConfig, startGateway } from '../gateway.mjs'
import { edgeConf, startMosquitto } from '../mosquitto.mjs'
import { freePorts, waitForPort } from '../ports.mjs'
import { hasExited, stopProcess } from '../processes.mjs'

const DIST = new URL('../../../dist/', import.meta.url)
const run = promisify(execFile)

export const passwordDeviceId = (n) => `pw-${String(n).padStart(4, '0')}`

async function secret(path, content) {
  await writeFile(path, content, { mode: 0o600 })
  await chmod(path, 0o600)
}

/**
 * A gateway variant, written `<form><ln>[/c<concurrency>][/m<MiB>][/cache<entries>]`: `scrypt14`
 * is `$scrypt$` at ln=14 (the default of `device hash-password`), `pepper10` is `$scrypt-pepper$`
 * at ln=10; `/c1` sets lan.passwordChecks.concurrency, `/m32` lan.passwordChecks.memoryMiB,
 * `/cache0` lan.passwordChecks.cacheEntries.
 * What is not given is not written into the config: the gateway's default applies.
 */
export function parseVariant(text) {
  const match = /^(scrypt|pepper)(\d{1,2})(?:\/c(\d+))?(?:\/m(\d+))?(?:\/cache(\d+))?$/.exec(text)
  if (!match)
    throw new Error(
      `Expected a gateway variant like scrypt14, scrypt14/c2/m32/cache0 or pepper10/c1, got ${JSON.stringify(text)}`,
    )
  return {
    name: text,
    form: match[1],
    ln: Number(match[2]),
    ...(match[3] !== undefined && { concurrency: Number(match[3]) }),
    ...(match[4] !== undefined && { memoryMiB: Number(match[4]) }),
    ...(match[5] !== undefined && { cacheEntries: Number(match[5]) }),
  }
}

/** Storm and steady devices on top of makeFixtures(): `passwordDevices`, `pskDevices` (from fixtures.idle). */
export function stormDevices(fixtures, { passwordDevices, pskDevices, distinct }) {
  if (pskDevices > fixtures.idle.length)
    throw new Error(`Expected at most ${fixtures.idle.length} TLS-PSK devices, got ${pskDevices}`)
  const passwords = Array.from({ length: distinct }, () => randomBytes(16).toString('base64url'))
  return {
    passwords,
    password: Array.from({ length: passwordDevices }, (_, n) => ({
      id: passwordDeviceId(n),
      password: passwords[n % distinct],
      slot: n % distinct,
    })),
    psk: fixtures.idle.slice(0, pskDevices).map((d) => ({ id: d.id, psk: d.psk, pskKeyFile: d.pskKeyFile })),
    // Two of the bench's publishers: one on each LAN transport.
    steadyPassword: fixtures.publishers[0],
    steadyPsk: fixtures.publishers[1],
  }
}

/** `{ distinct hashes, steady device's hash }` for one hash form (`scrypt` or `pepper` at `ln`). */
export async function hashesFor(devices, variant, pepperFile) {
  const { hashPassword } = await import(new URL('gateway/index.js', DIST).href)
  let pepper
  if (variant.form === 'pepper') {
    const { readPepperFile } = await import(new URL('gateway/auth/pepper.js', DIST).href)
    pepper = await readPepperFile(pepperFile)
  }
  const params = { ln: variant.ln, r: 8, p: 1 }
  const all = await Promise.all(
    [...devices.passwords, devices.steadyPassword.password].map((pw) => hashPassword(pw, params, pepper)),
  )
  return { distinct: all.slice(0, -1), steady: all.at(-1) }
}

export async function writePepperFile(root) {
  const file = join(root, 'keys', 'password.pepper')
  await secret(file, `${randomBytes(32).toString('hex')}\n`)
  return file
}

function gatewayDevices(devices, hashes) {
  const steady = devices.steadyPassword
  return [
    {
      id: steady.id,
      username: steady.id,
      passwordHash: hashes.steady,
      clientIds: [steady.id, `${steady.id}-*`],
    },
    {
      id: devices.steadyPsk.id,
      psk: { identity: devices.steadyPsk.psk.identity, keyFile: devices.steadyPsk.pskKeyFile },
      clientIds: [devices.steadyPsk.id, `${devices.steadyPsk.id}-*`],
    },
    ...devices.password.map((d) => ({ id: d.id, username: d.id, passwordHash: hashes.distinct[d.slot] })),
    ...devices.psk.map((d) => ({ id: d.id, psk: { identity: d.psk.identity, keyFile: d.pskKeyFile } })),
  ]
}

/**
 * An edge that can be stopped and started again on the same ports and folder. `start()`
 * resolves with performance.timeOrigin-based spawn time once both LAN ports accept.
 */
function restartable({ name, dir, ports, spawn }) {
  let child = null
  return {
    name,
    dir,
    ...ports,
    get pid() {
      return child?.pid
    },
    running: () => child !== null && !hasExited(child),
    async start() {
      const spawnedAt = performance.timeOrigin + performance.now()
      child = spawn()
      for (const port of [ports.tcpPort, ports.pskPort])
        await waitForPort(port, { timeoutMs: 60_000, gone: () => hasExited(child), what: name })
      return { spawnedAt, listeningAt: performance.timeOrigin + performance.now() }
    },
    async stop() {
      const stoppingAt = performance.timeOrigin + performance.now()
      await stopProcess(child, 20_000)
      return { stoppingAt, stoppedAt: performance.timeOrigin + performance.now() }
    },
  }
}

export async function gatewayEdge({ fixtures, devices, variant, pepperFile, cloudPort, dir }) {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const [tcpPort, pskPort] = await freePorts(2)
  const hashes = await hashesFor(devices, variant, pepperFile)
  const config = gatewayConfig({ tcpPort, pskPort, cloudPort, pki: fixtures.pki, fixtures })
  config.devices = gatewayDevices(devices, hashes)
  if (variant.form === 'pepper') config.lan.passwordPepperFile = pepperFile
  const checks = {
    ...(variant.concurrency !== undefined && { concurrency: variant.concurrency }),
    ...(variant.memoryMiB !== undefined && { memoryMiB: variant.memoryMiB }),
    ...(variant.cacheEntries !== undefined && { cacheEntries: variant.cacheEntries }),
  }
  if (Object.keys(checks).length > 0) config.lan.passwordChecks = checks
  const configFile = join(dir, 'gateway.yaml')
  await writeFile(configFile, JSON.stringify(config, null, 2), { mode: 0o600 })
  const logFile = join(dir, 'gateway.log')
  return restartable({
    name: `gateway ${variant.name}`,
    dir,
    ports: { tcpPort, pskPort },
    spawn: () => startGateway({ dir, configFile, logFile }),
  })
}

export async function mosquittoEdge({ fixtures, devices, cloudPort, dir }) {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const [tcpPort, pskPort] = await freePorts(2)
  // mosquitto_passwd -U hashes a file of plain `user:password` lines in place ($7$, PBKDF2-SHA512).
  const passwordFile = join(dir, 'passwords')
  const lines = [devices.steadyPassword, ...devices.password].map((d) => `${d.id}:${d.password}\n`)
  await secret(passwordFile, lines.join(''))
  await run('mosquitto_passwd', ['-U', passwordFile], { timeout: 60_000 })
  const files = { ...fixtures.mosquitto, passwordFile }
  const confFile = join(dir, 'mosquitto.conf')
  await writeFile(
    confFile,
    edgeConf({ dir, tcpPort, pskPort, cloudPort, pki: fixtures.pki, files, idle: true }),
  )
  return restartable({
    name: 'mosquitto',
    dir,
    ports: { tcpPort, pskPort },
    spawn: () => startMosquitto({ dir, confFile }),
  })
}
