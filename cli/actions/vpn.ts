import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { type GatewayConfig, loadConfig, type VpnConfig } from '../../config/index.js'
import { toTunnelConfig } from '../../config/vpn-schema.js'
import { VpnError } from '../../vpn/errors.js'
import { readTunnelSample } from '../../vpn/health.js'
import { evaluateHealth, type TunnelState } from '../../vpn/health-state.js'
import { createKeys } from '../../vpn/keys.js'
import { bringDown, bringUp } from '../../vpn/tunnel.js'
import { resolveCloudAddress, runningTunnelOwner, tunnelOwnerFile } from '../vpn-tunnel.js'

export interface ConfigOption {
  config: string
}

/** The config's `vpn` section, or a config error saying there is none. */
async function vpnOf(file: string): Promise<{ config: Readonly<GatewayConfig>; vpn: VpnConfig }> {
  // Key files are not checked here: `vpn keys` creates them, and the others check them themselves.
  const config = await loadConfig(file, { checkFiles: false })
  if (config.vpn === undefined) {
    throw new VpnError(
      'VPN_ERR_BAD_CONFIG',
      `${file} has no vpn section; add one (docs/vpn.md) to use \`edge-gateway vpn\``,
    )
  }
  return { config, vpn: config.vpn }
}

function requireManaged(vpn: VpnConfig, action: string): void {
  if (!vpn.manage) {
    throw new VpnError(
      'VPN_ERR_BAD_CONFIG',
      `vpn.manage is false: the system manages ${vpn.interfaceName}, so \`edge-gateway vpn ${action}\` does not touch it (use wg-quick or systemd-networkd, or set vpn.manage to true)`,
    )
  }
}

/** Where `vpn up` records wireguard-go's PID for `vpn down`, and its log. */
async function runtimeFiles(
  config: Readonly<GatewayConfig>,
  vpn: VpnConfig,
): Promise<{ pidFile: string; logFile: string }> {
  const dir = join(config.gateway.stateDir, 'vpn')
  await mkdir(dir, { recursive: true, mode: 0o700 })
  return {
    pidFile: join(dir, `${vpn.interfaceName}.pid`),
    logFile: join(dir, `${vpn.interfaceName}.wireguard-go.log`),
  }
}

function commandOptions(vpn: VpnConfig): { netns?: string } {
  return vpn.netns === undefined ? {} : { netns: vpn.netns }
}

/** How long `vpn status` watches for traffic when the last handshake is older than the window. */
const STATUS_WATCH_MS = 5000

/**
 * The tunnel's state. With a handshake older than the health window the tunnel may still be alive
 * (WireGuard re-handshakes only every 2 minutes; keepalives count), so it reads again every
 * `pollMs` (at most 500 ms apart) for up to 5 s or the window, whichever is shorter, until
 * received traffic shows it alive.
 */
export async function tunnelStatus(
  vpn: VpnConfig,
  now: () => number = Date.now,
  mono: () => number = () => performance.now(),
): Promise<TunnelState> {
  const windowMs = vpn.healthyHandshakeSeconds * 1000
  const read = async () => {
    const sample = await readTunnelSample(vpn.interfaceName, vpn.peer.publicKey, commandOptions(vpn))
    if (sample.error !== null) {
      throw new VpnError(sample.error.code as VpnError['code'], sample.error.message)
    }
    return sample
  }
  let last = evaluateHealth(vpn.interfaceName, await read(), undefined, now(), windowMs, mono())
  const until = mono() + Math.min(STATUS_WATCH_MS, windowMs)
  const interval = Math.min(vpn.pollMs, 500)
  while (!last.state.healthy && last.state.up && last.state.handshakeAgeMs !== null && mono() < until) {
    await sleep(interval)
    last = evaluateHealth(vpn.interfaceName, await read(), last.memory, now(), windowMs, mono())
  }
  return last.state
}

function age(ms: number | null): string {
  return ms === null ? 'never' : `${(ms / 1000).toFixed(1)} s ago`
}

/** `vpn status` as text: one `field  value` line each. */
export function formatTunnelStatus(state: TunnelState): string {
  const rows: Array<[string, string]> = [
    ['interface', state.interfaceName],
    ['up', state.up ? 'yes' : 'no'],
    ['healthy', state.healthy ? 'yes' : `no (${state.reason ?? 'unknown'})`],
    ['handshake', age(state.handshakeAgeMs)],
    ['received', `${state.rxBytes} bytes`],
    ['sent', `${state.txBytes} bytes`],
    ['endpoint', state.endpoint ?? 'none'],
  ]
  return `${rows.map(([k, v]) => `${k.padEnd(10)} ${v}`).join('\n')}\n`
}

/** `vpn keys`: the gateway's WireGuard key pair (kept if there), and its public key printed. */
export async function makeKeys(options: ConfigOption & { overwrite?: boolean }): Promise<void> {
  const { vpn: section } = await vpnOf(options.config)
  if (section.privateKeyFile === undefined) {
    throw new VpnError(
      'VPN_ERR_BAD_CONFIG',
      `${options.config}: vpn.privateKeyFile is not set; say where the private key goes`,
    )
  }
  const keys = await createKeys({
    privateKeyFile: section.privateKeyFile,
    ...(section.peer.presharedKeyFile !== undefined && {
      presharedKeyFile: section.peer.presharedKeyFile,
    }),
    overwrite: options.overwrite ?? false,
  })
  process.stderr.write(
    `private key ${keys.createdPrivateKey ? 'written to' : 'kept in'} ${section.privateKeyFile} (mode 0600)\n`,
  )
  if (section.peer.presharedKeyFile !== undefined) {
    process.stderr.write(
      `preshared key ${keys.createdPresharedKey ? 'written to' : 'kept in'} ${section.peer.presharedKeyFile} (mode 0600): copy this file to the cloud side securely; it is never printed\n`,
    )
  }
  process.stderr.write("public key (the cloud side's [Peer] PublicKey):\n")
  process.stdout.write(`${keys.publicKey}\n`)
}

/** `vpn mode`: off, managed or system, from the config as the gateway reads it (for deploy/install.sh). */
export async function mode(options: ConfigOption): Promise<void> {
  const config = await loadConfig(options.config, { checkFiles: false })
  process.stdout.write(`${config.vpn === undefined ? 'off' : config.vpn.manage ? 'managed' : 'system'}\n`)
}

/** `vpn up`: the tunnel brought up from the config (wireguard-go, if used, keeps running). */
export async function up(options: ConfigOption): Promise<void> {
  const { config, vpn: section } = await vpnOf(options.config)
  requireManaged(section, 'up')
  const cloudAddress = await resolveCloudAddress(config.cloud.host, section)
  const files = await runtimeFiles(config, section)
  const tunnel = await bringUp(toTunnelConfig(section), {
    ...commandOptions(section),
    cloudAddress,
    detached: true,
    ...files,
  })
  // This interface is vpn up's, not a killed gateway's leftover: a record a gateway left must not
  // make the next `start` remove it (it refuses it instead).
  await rm(tunnelOwnerFile(config.gateway.stateDir, section.interfaceName), { force: true })
  process.stdout.write(
    `tunnel ${tunnel.interfaceName} up (${tunnel.implementation}${tunnel.pid === null ? '' : `, pid ${tunnel.pid}`}); ${cloudAddress} is routed through it\n`,
  )
}

/**
 * `vpn down`: the tunnel brought down. A tunnel that a running gateway brought up is refused
 * without `--force`: taking it away stops that gateway (VPN_ERR_TUNNEL_LOST), and its service
 * manager brings both back at once, so the command would not do what it says.
 */
export async function down(options: ConfigOption & { force?: boolean }): Promise<void> {
  const { config, vpn: section } = await vpnOf(options.config)
  requireManaged(section, 'down')
  const owner = await runningTunnelOwner(config.gateway.stateDir, section.interfaceName)
  if (owner !== undefined && options.force !== true) {
    throw new VpnError(
      'VPN_ERR_TUNNEL_IN_USE',
      `the gateway running as pid ${owner} brought ${section.interfaceName} up and sends the cloud link through it: stop that gateway (\`systemctl stop edge-gateway\`), which brings its tunnel down; or pass --force, and that gateway stops with VPN_ERR_TUNNEL_LOST (its service manager starts it and the tunnel again)`,
    )
  }
  const { pidFile } = await runtimeFiles(config, section)
  await bringDown({ interfaceName: section.interfaceName }, { ...commandOptions(section), pidFile })
  process.stdout.write(`tunnel ${section.interfaceName} down\n`)
}

/** `vpn status`: the tunnel's state; exit 1 when not healthy. */
export async function status(options: ConfigOption & { json?: boolean }): Promise<void> {
  const { vpn: section } = await vpnOf(options.config)
  const state = await tunnelStatus(section)
  process.stdout.write(options.json ? `${JSON.stringify(state)}\n` : formatTunnelStatus(state))
  if (!state.healthy) process.exitCode = 1
}
