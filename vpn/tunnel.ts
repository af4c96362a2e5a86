import { rm } from 'node:fs/promises'
import { networkOf, sameNetwork } from './cidr.js'
import {
  checkCloudInsideTunnel,
  type ResolvedTunnelConfig,
  resolveTunnelConfig,
  type TunnelConfig,
} from './config.js'
import { VpnError } from './errors.js'
import { runWithSecretFile } from './fifo.js'
import { readKeyFile } from './key-files.js'
import {
  addAddress,
  addKernelInterface,
  addRoute,
  deleteLink,
  describeRoute,
  linkInfo,
  routeTo,
  setLinkUp,
  setMtu,
} from './link.js'
import { checkInterfaceName } from './names.js'
import { interfaceSettingsOf, renderInterfaceConfig } from './render.js'
import { type CommandOptions, type Daemon, run } from './run.js'
import { startWireguardGo, stopByPidFile, writePidFile } from './wireguard-go.js'

export interface StartOptions extends CommandOptions {
  /** Where to record wireguard-go's PID, so `bringDown` in another process can stop it. */
  pidFile?: string
  /** Let wireguard-go outlive this process (`edge-gateway vpn up`); give it a `logFile` then. */
  detached?: boolean
  /** wireguard-go's output, appended (mode 0600). */
  logFile?: string
}

export interface BringUpOptions extends StartOptions {
  /**
   * The cloud broker's IP address. `bringUp` refuses a config whose allowed IPs miss it, and
   * checks with `ip route get` that the kernel really routes it through the tunnel.
   */
  cloudAddress: string
}

/** A tunnel this process brought up. */
export interface Tunnel {
  readonly interfaceName: string
  readonly implementation: 'kernel' | 'wireguard-go'
  readonly netns: string | undefined
  /** PID of the wireguard-go process started for it; null with kernel WireGuard. */
  readonly pid: number | null
  /** Deletes the interface (and its routes) and stops wireguard-go. Safe to call more than once. */
  down(): Promise<void>
}

/**
 * wireguard-go's control socket. It removes it when it exits normally, but one killed with SIGKILL
 * leaves it behind. The folder is shared by all network namespaces.
 */
const WIREGUARD_GO_SOCKET_DIR = '/var/run/wireguard'

/** Removes the control socket of `name` once its wireguard-go is gone. */
async function removeStaleSocket(name: string): Promise<void> {
  await rm(`${WIREGUARD_GO_SOCKET_DIR}/${checkInterfaceName(name)}.sock`, { force: true })
}

class RunningTunnel implements Tunnel {
  readonly pid: number | null
  #down: Promise<void> | undefined

  constructor(
    readonly interfaceName: string,
    readonly implementation: 'kernel' | 'wireguard-go',
    readonly netns: string | undefined,
    private readonly daemon: Daemon | undefined,
    private readonly options: StartOptions,
  ) {
    this.pid = daemon?.pid ?? null
  }

  down(): Promise<void> {
    this.#down ??= this.#stop()
    return this.#down
  }

  async #stop(): Promise<void> {
    let failure: unknown
    try {
      await deleteLink(this.interfaceName, this.options)
    } catch (err) {
      failure = err
    }
    if (this.daemon !== undefined) {
      // wireguard-go exits by itself when its interface goes; SIGTERM, then SIGKILL, if it lingers.
      const gone = await Promise.race([
        this.daemon.exited.then(() => true),
        new Promise<false>((resolve) => setTimeout(() => resolve(false), 2000).unref()),
      ])
      if (!gone) await this.daemon.stop(3000)
    }
    if (this.implementation === 'wireguard-go') await removeStaleSocket(this.interfaceName)
    if (this.options.pidFile !== undefined) await rm(this.options.pidFile, { force: true })
    if (failure !== undefined) throw failure
    this.options.logger?.info({ interface: this.interfaceName }, 'wireguard tunnel down')
  }
}

async function createInterface(
  config: ResolvedTunnelConfig,
  options: StartOptions,
): Promise<{ implementation: 'kernel' | 'wireguard-go'; daemon?: Daemon }> {
  const name = config.interfaceName
  if (config.implementation !== 'wireguard-go') {
    const result = await addKernelInterface(name, options)
    if (result === 'created') return { implementation: 'kernel' }
    if (config.implementation === 'kernel') {
      throw new VpnError(
        'VPN_ERR_COMMAND_FAILED',
        `The kernel has no WireGuard (\`ip link add dev ${name} type wireguard\`: Unknown device type); install wireguard-go and set vpn.implementation to auto`,
      )
    }
    options.logger?.info({ interface: name }, 'kernel has no WireGuard; using wireguard-go')
  }
  return { implementation: 'wireguard-go', daemon: await startWireguardGo(name, options) }
}

async function addRoutes(config: ResolvedTunnelConfig, options: StartOptions): Promise<void> {
  const done = new Set<string>()
  for (const prefix of config.peer.allowedIps) {
    const network = networkOf(prefix)
    // The kernel already routes an address's own network through the interface.
    if (done.has(network) || config.addresses.some((a) => sameNetwork(a, prefix))) continue
    done.add(network)
    await addRoute(config.interfaceName, network, options)
  }
}

async function verifyRoute(name: string, cloudAddress: string, options: StartOptions): Promise<void> {
  const route = await routeTo(cloudAddress, options)
  if (route?.dev !== name) {
    throw new VpnError(
      'VPN_ERR_CLOUD_OUTSIDE_TUNNEL',
      `The kernel routes the cloud broker address ${cloudAddress} ${describeRoute(route)}, not through ${name}; a more specific route may be in the way`,
    )
  }
}

/**
 * Creates the interface and configures it (the part both ends share). `cloudAddress`, when
 * given, must end up routed through it.
 */
export async function startInterface(
  config: ResolvedTunnelConfig,
  options: StartOptions,
  cloudAddress?: string,
): Promise<Tunnel> {
  const name = config.interfaceName
  const privateKey = await readKeyFile(config.privateKeyFile)
  const presharedKey =
    config.peer.presharedKeyFile === undefined
      ? undefined
      : await readKeyFile(config.peer.presharedKeyFile, 'preshared key')
  const rendered = renderInterfaceConfig(interfaceSettingsOf(config, { privateKey, presharedKey }))
  const secrets = [privateKey.reveal(), ...(presharedKey === undefined ? [] : [presharedKey.reveal()])]
  await run('wg', ['--version'], options)
  if ((await linkInfo(name, options)) !== null) {
    throw new VpnError(
      'VPN_ERR_INTERFACE_EXISTS',
      `Interface ${name} already exists; bring it down first (\`edge-gateway vpn down\`) or choose another vpn.interfaceName`,
    )
  }
  const created = await createInterface(config, options)
  const tunnel = new RunningTunnel(name, created.implementation, options.netns, created.daemon, options)
  try {
    // The private key travels through a FIFO only: never stored in a file, never on argv.
    await runWithSecretFile('wg', (path) => ['setconf', name, path], rendered, { ...options, secrets })
    for (const address of config.addresses) await addAddress(name, address.text, options)
    await setMtu(name, config.mtu, options)
    await setLinkUp(name, options)
    await addRoutes(config, options)
    if (cloudAddress !== undefined) await verifyRoute(name, cloudAddress, options)
    if (options.pidFile !== undefined && created.daemon !== undefined) {
      await writePidFile(options.pidFile, created.daemon.pid)
    }
  } catch (err) {
    await tunnel.down().catch((cleanupErr: unknown) => {
      options.logger?.warn({ interface: name, err: cleanupErr }, 'could not remove a half-configured tunnel')
    })
    throw err
  }
  options.logger?.info(
    { interface: name, implementation: created.implementation, pid: tunnel.pid },
    'wireguard tunnel up',
  )
  return tunnel
}

/**
 * Brings the gateway's tunnel up: validates the config, refuses it if the cloud broker's address
 * would be routed outside the tunnel, creates the interface (kernel WireGuard, else wireguard-go,
 * per `implementation`), sets keys and peer through stdin, addresses, MTU, link up and routes,
 * and checks the route to the cloud. On any failure it removes what it made.
 */
export async function bringUp(config: TunnelConfig, options: BringUpOptions): Promise<Tunnel> {
  const resolved = resolveTunnelConfig(config)
  if (resolved.peer.endpoint === undefined) {
    throw new VpnError(
      'VPN_ERR_BAD_CONFIG',
      'Expected vpn.peer.endpoint (host:port of the cloud side), got none',
    )
  }
  checkCloudInsideTunnel(resolved, options.cloudAddress)
  return startInterface(resolved, options, options.cloudAddress)
}

/**
 * Brings down a tunnel that another process brought up (`edge-gateway vpn down`): deletes the
 * interface and stops the wireguard-go recorded in `pidFile`. A tunnel that is not there is fine.
 * Within one process, prefer `tunnel.down()`.
 */
export async function bringDown(
  target: { interfaceName: string },
  options: CommandOptions & { pidFile?: string } = {},
): Promise<void> {
  await deleteLink(checkInterfaceName(target.interfaceName), options)
  if (options.pidFile !== undefined) {
    await stopByPidFile(options.pidFile, target.interfaceName)
    await removeStaleSocket(target.interfaceName)
  }
}
