import { basename } from 'node:path'
import { VpnError, type VpnErrorCode } from './errors.js'

/** The tools `vpn/` runs, with the Debian package that installs each. */
export const TOOL_PACKAGES: Readonly<Record<string, { code: VpnErrorCode; debianPackage: string }>> = {
  wg: { code: 'VPN_ERR_WG_NOT_FOUND', debianPackage: 'wireguard-tools' },
  'wg-quick': { code: 'VPN_ERR_WG_NOT_FOUND', debianPackage: 'wireguard-tools' },
  'wireguard-go': { code: 'VPN_ERR_WG_GO_NOT_FOUND', debianPackage: 'wireguard-go' },
  ip: { code: 'VPN_ERR_IP_NOT_FOUND', debianPackage: 'iproute2' },
}

/** What is known about a command that failed. `stderr` must already be redacted. */
export interface FailedCommand {
  /** The program the caller asked for (`wg`), before any `ip netns exec` wrapping. */
  program: string
  /** The command line as run, for messages (argv never holds a secret). */
  commandLine: string
  netns: string | undefined
  /** Node's error code when the program could not be started at all (`ENOENT`, `EACCES`). */
  spawnCode: string | undefined
  exitCode: number | undefined
  signal: string | undefined
  timedOut: boolean
  timeoutMs: number
  stderr: string
  /** The PATH the command was looked up in. */
  pathEnv: string | undefined
}

const MAX_STDERR = 600

function tail(stderr: string): string {
  const text = stderr.trim()
  return text.length <= MAX_STDERR ? text : `...${text.slice(-MAX_STDERR)}`
}

function missingProgram(f: FailedCommand): string | null {
  if (f.spawnCode === 'ENOENT') return basename(f.netns === undefined ? f.program : 'ip')
  // `ip netns exec` runs the program itself and reports a missing one like this (exit 255).
  const m = /exec of "([^"]+)" failed: No such file or directory/.exec(f.stderr)
  return m?.[1] === undefined ? null : basename(m[1])
}

function notFound(program: string, f: FailedCommand): VpnError {
  const tool = TOOL_PACKAGES[program]
  const where = `\`${program}\` was not found in PATH (${f.pathEnv ?? 'unset'})`
  const details = { command: f.commandLine, stderr: tail(f.stderr) }
  if (tool === undefined) {
    return new VpnError('VPN_ERR_COMMAND_NOT_FOUND', `${where}: install it`, { details })
  }
  const hint =
    program === 'wireguard-go' ? ', or run a kernel with WireGuard and set vpn.implementation to kernel' : ''
  return new VpnError(
    tool.code,
    `${where}: install the Debian package ${tool.debianPackage} (apt-get install ${tool.debianPackage})${hint}`,
    { details },
  )
}

/** Turns a failed command into the most specific `VpnError`. Pure, so it is tested on captured stderr. */
export function failureError(f: FailedCommand): VpnError {
  const details = {
    command: f.commandLine,
    ...(f.exitCode === undefined ? {} : { exitCode: f.exitCode }),
    stderr: tail(f.stderr),
  }
  const shown = `\`${f.commandLine}\``
  if (f.timedOut) {
    return new VpnError(
      'VPN_ERR_TIMEOUT',
      `${shown} did not finish within ${f.timeoutMs} ms and was killed`,
      {
        details,
      },
    )
  }
  const missing = missingProgram(f)
  if (missing !== null) return notFound(missing, f)
  const ns = /Cannot open network namespace "([^"]+)": No such file or directory/.exec(f.stderr)
  if (ns !== null) {
    return new VpnError(
      'VPN_ERR_NETNS_NOT_FOUND',
      `Network namespace ${JSON.stringify(ns[1])} does not exist`,
      {
        details,
      },
    )
  }
  if (
    /Failed to create TUN device: no such (file|device)/i.test(f.stderr) ||
    /\/dev\/net\/tun/.test(f.stderr)
  ) {
    return new VpnError(
      'VPN_ERR_NO_TUN',
      `${shown} cannot open /dev/net/tun (${tail(f.stderr)}): wireguard-go needs the tun device; load the tun module, or in a container pass --device /dev/net/tun`,
      { details },
    )
  }
  if (/operation not permitted/i.test(f.stderr) || f.spawnCode === 'EPERM') {
    const cap = /network namespace|netns|\/run\/netns/i.test(f.stderr) ? 'CAP_SYS_ADMIN' : 'CAP_NET_ADMIN'
    return new VpnError(
      'VPN_ERR_NO_PRIVILEGE',
      `${shown} was refused (Operation not permitted): managing WireGuard interfaces needs ${cap}; run as root or grant it (systemd: AmbientCapabilities=${cap})`,
      { details },
    )
  }
  if (f.spawnCode !== undefined) {
    return new VpnError('VPN_ERR_COMMAND_FAILED', `${shown} could not be started (${f.spawnCode})`, {
      details,
    })
  }
  const how = f.exitCode !== undefined ? `exit code ${f.exitCode}` : `signal ${f.signal ?? 'unknown'}`
  const said = tail(f.stderr)
  return new VpnError(
    'VPN_ERR_COMMAND_FAILED',
    `${shown} failed with ${how}${said === '' ? '' : `: ${said}`}`,
    {
      details,
    },
  )
}
