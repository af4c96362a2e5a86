/** Starting and stopping the userspace implementation, tracked by PID. */
import { readFile, rm, writeFile } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { VpnError } from './errors.js'
import { type CommandOptions, type Daemon, type DaemonOptions, run, spawnDaemon } from './run.js'

export interface WireguardGoOptions extends CommandOptions {
  detached?: boolean
  logFile?: string
  /** How long wireguard-go may take to create the interface and its control socket; default 5000 ms. */
  startTimeoutMs?: number
}

const FATAL_WHILE_STARTING = new Set([
  'VPN_ERR_WG_NOT_FOUND',
  'VPN_ERR_IP_NOT_FOUND',
  'VPN_ERR_NO_PRIVILEGE',
  'VPN_ERR_NETNS_NOT_FOUND',
])

/**
 * Starts `wireguard-go -f <name>` (foreground, so the PID is the process that owns the
 * interface) and resolves once `wg` can talk to it. If it exits first, the error says why
 * (not installed, no CAP_NET_ADMIN, no /dev/net/tun).
 */
export async function startWireguardGo(name: string, options: WireguardGoOptions): Promise<Daemon> {
  const daemonOptions: DaemonOptions = {
    ...options,
    // With the process already in the foreground, this also silences its "use the kernel module" banner.
    env: { ...options.env, WG_PROCESS_FOREGROUND: '1' },
  }
  const daemon = await spawnDaemon('wireguard-go', ['-f', name], daemonOptions)
  const deadline = performance.now() + (options.startTimeoutMs ?? 5000)
  while (performance.now() < deadline) {
    if (daemon.hasExited()) throw daemon.failure()
    try {
      await run('wg', ['show', name, 'listen-port'], { ...options, timeoutMs: 2000 })
      return daemon
    } catch (err) {
      if (err instanceof VpnError && FATAL_WHILE_STARTING.has(err.code)) {
        await daemon.stop(2000)
        throw err
      }
    }
    await Promise.race([sleep(50), daemon.exited])
  }
  if (daemon.hasExited()) throw daemon.failure()
  await daemon.stop(2000)
  throw new VpnError(
    'VPN_ERR_TIMEOUT',
    `wireguard-go did not create ${name} within ${options.startTimeoutMs ?? 5000} ms (last output: ${daemon.output().slice(-3).join(' | ') || 'none'})`,
  )
}

export async function writePidFile(path: string, pid: number): Promise<void> {
  await writeFile(path, `${pid}\n`, { mode: 0o600 })
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function isOurWireguardGo(pid: number, name: string): Promise<boolean> {
  try {
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0')
    return argv.some((a) => a.endsWith('wireguard-go')) && argv.includes(name)
  } catch {
    return false
  }
}

/**
 * Stops the wireguard-go whose PID `pidFile` holds (written by `bringUp` in another process),
 * after checking that PID still is `wireguard-go ... <name>`; then removes the file.
 */
export async function stopByPidFile(pidFile: string, name: string, graceMs = 3000): Promise<void> {
  let text: string
  try {
    text = await readFile(pidFile, 'utf8')
  } catch {
    return
  }
  const pid = Number(text.trim())
  if (Number.isInteger(pid) && pid > 1 && (await isOurWireguardGo(pid, name))) {
    const deadline = performance.now() + graceMs
    // Deleting the interface usually ends it; give it a moment before signalling.
    while (performance.now() < deadline && alive(pid) && (await isOurWireguardGo(pid, name))) await sleep(50)
    if (alive(pid) && (await isOurWireguardGo(pid, name))) {
      process.kill(pid, 'SIGTERM')
      const killAt = performance.now() + graceMs
      while (performance.now() < killAt && (await isOurWireguardGo(pid, name))) await sleep(50)
      if (await isOurWireguardGo(pid, name)) process.kill(pid, 'SIGKILL')
    }
  }
  await rm(pidFile, { force: true })
}
