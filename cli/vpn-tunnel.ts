/**
 * The tunnel of a config with a `vpn` section (cli/vpn-runtime.ts loads this module only then):
 * brought up before the bridge connects (unless the system manages it), watched for health, its
 * health fed to the bridge as `gate$`, and brought down when the gateway stops.
 */
import { lookup } from 'node:dns/promises'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { isIP } from 'node:net'
import { join } from 'node:path'
import { BehaviorSubject, distinctUntilChanged, map, type Subscription, scan } from 'rxjs'
import type { GatewayConfig, VpnConfig } from '../config/index.js'
import { toTunnelConfig, toWatchTarget } from '../config/vpn-schema.js'
import type { Logger } from '../core/logger.js'
import type { Metrics } from '../core/metrics.js'
import { otherRunningHolder, processRecord, recordedPid } from '../core/state-lock.js'
import { checkCloudInsideTunnel } from '../vpn/config.js'
import { VpnError } from '../vpn/errors.js'
import { watchTunnel } from '../vpn/health.js'
import type { TunnelState } from '../vpn/health-state.js'
import { linkInfo } from '../vpn/link.js'
import { bringDown, bringUp, type Tunnel } from '../vpn/tunnel.js'
import type { VpnMode, VpnRuntime } from './vpn-runtime.js'

/**
 * The IP address the bridge will connect to, checked to be inside the tunnel: `cloud.host` itself,
 * or, for a name, every address it resolves to (the first is returned).
 */
export async function resolveCloudAddress(host: string, vpn: VpnConfig): Promise<string> {
  let addresses: string[]
  if (isIP(host) !== 0) addresses = [host]
  else {
    try {
      addresses = (await lookup(host, { all: true })).map((a) => a.address)
    } catch (err) {
      throw new VpnError(
        'VPN_ERR_BAD_CONFIG',
        `Cannot resolve cloud.host ${JSON.stringify(host)} to check that it is inside the tunnel (${(err as NodeJS.ErrnoException).code ?? 'error'}); use the cloud broker's tunnel address, and cloud.servername for its certificate name`,
        { cause: err },
      )
    }
  }
  for (const address of addresses) checkCloudInsideTunnel(vpn, address)
  const first = addresses[0]
  if (first === undefined) {
    throw new VpnError('VPN_ERR_BAD_CONFIG', `cloud.host ${JSON.stringify(host)} resolved to no address`)
  }
  return first
}

function seconds(ms: number | null): string {
  return ms === null ? 'never' : `${(ms / 1000).toFixed(1)} s ago`
}

/** One line per health transition, with the handshake age. */
function logTransition(logger: Logger, state: TunnelState, previous: TunnelState | null): void {
  const fields = {
    event: 'tunnel_health',
    interface: state.interfaceName,
    up: state.up,
    healthy: state.healthy,
    handshakeAgeMs: state.handshakeAgeMs,
    rxBytes: state.rxBytes,
    txBytes: state.txBytes,
    endpoint: state.endpoint,
    reason: state.reason,
  }
  if (state.healthy) {
    logger.info(
      fields,
      `vpn tunnel ${state.interfaceName} healthy (handshake ${seconds(state.handshakeAgeMs)}, endpoint ${state.endpoint ?? 'unknown'})${previous === null ? '' : '; the bridge resumes'}`,
    )
  } else {
    logger.warn(
      fields,
      `vpn tunnel ${state.interfaceName} unhealthy (handshake ${seconds(state.handshakeAgeMs)}): ${state.reason ?? 'unknown'}; the bridge holds messages in the queue`,
    )
  }
}

/** The owner record of the gateway's managed interface (TunnelOwner). */
export function tunnelOwnerFile(stateDir: string, interfaceName: string): string {
  return join(stateDir, 'vpn', `${interfaceName}.owner`)
}

/** The PID of the gateway, other than this process, that an owner record names and that runs; or undefined. */
async function runningOwnerIn(ownerFile: string): Promise<number | undefined> {
  return otherRunningHolder(await readFile(ownerFile, 'utf8').catch(() => ''))
}

/** The PID of the gateway, other than this process, recorded as the interface's owner and running; or undefined. */
export function runningTunnelOwner(stateDir: string, interfaceName: string): Promise<number | undefined> {
  return runningOwnerIn(tunnelOwnerFile(stateDir, interfaceName))
}

/**
 * Which gateway process brought the managed interface up: `<stateDir>/vpn/<interface>.owner` holds
 * its PID and start time (0600; a record of an earlier version, the PID alone) while the tunnel is up, and `<interface>.gateway-wireguard-go.pid` the PID of its
 * wireguard-go. A gateway killed without its stop (SIGKILL, the OOM killer) leaves the interface
 * behind: kernel WireGuard keeps it, and a wireguard-go outside systemd's cgroup outlives its parent. The next start would then refuse it (VPN_ERR_INTERFACE_EXISTS) on every
 * restart. An interface whose recorded owner is no longer running is this gateway's own leftover:
 * it is removed, said in a warning, and brought up afresh. One with no record (`edge-gateway vpn
 * up`, or someone else's) or whose owner still runs is refused as before.
 */
class TunnelOwner {
  private constructor(
    private readonly ownerFile: string,
    readonly pidFile: string,
    private readonly interfaceName: string,
    private readonly logger: Logger,
  ) {}

  static async at(stateDir: string, interfaceName: string, logger: Logger): Promise<TunnelOwner> {
    const dir = join(stateDir, 'vpn')
    await mkdir(dir, { recursive: true, mode: 0o700 })
    return new TunnelOwner(
      tunnelOwnerFile(stateDir, interfaceName),
      join(dir, `${interfaceName}.gateway-wireguard-go.pid`),
      interfaceName,
      logger,
    )
  }

  /** The PID of another gateway that runs and is recorded as the owner, or undefined. */
  runningOwner(): Promise<number | undefined> {
    return runningOwnerIn(this.ownerFile)
  }

  async removeLeftover(command: { netns?: string }): Promise<void> {
    const record = await readFile(this.ownerFile, 'utf8').catch(() => '')
    const pid = recordedPid(record)
    // Our own PID recorded is a stale record too: this process has brought nothing up yet.
    if (pid === undefined || otherRunningHolder(record) !== undefined) return
    if ((await linkInfo(this.interfaceName, command)) !== null) {
      this.logger.warn(
        { interface: this.interfaceName, previousPid: pid, event: 'vpn_leftover_removed' },
        `vpn: interface ${this.interfaceName} was left by this gateway's previous run (pid ${pid}, no longer running); removing it before bringing the tunnel up`,
      )
      await bringDown({ interfaceName: this.interfaceName }, { ...command, pidFile: this.pidFile })
    }
    await rm(this.ownerFile, { force: true })
  }

  claim(): Promise<void> {
    return writeFile(this.ownerFile, processRecord(), { mode: 0o600 })
  }

  release(): Promise<void> {
    return rm(this.ownerFile, { force: true })
  }
}

/** Brings the tunnel of `vpn` up (when `vpn.manage` is true) and starts watching it (startVpn's work). */
export async function startTunnel(
  config: Readonly<GatewayConfig>,
  vpn: VpnConfig,
  options: { logger: Logger; metrics: Metrics },
): Promise<VpnRuntime> {
  const { logger, metrics } = options
  const mode: VpnMode = vpn.manage ? 'managed' : 'system'
  const command = vpn.netns === undefined ? { logger } : { logger, netns: vpn.netns }
  const cloudAddress = await resolveCloudAddress(config.cloud.host, vpn)
  let tunnel: Tunnel | undefined
  let owner: TunnelOwner | undefined
  if (vpn.manage) {
    owner = await TunnelOwner.at(config.gateway.stateDir, vpn.interfaceName, logger)
    await owner.removeLeftover(command)
    // The interface of a gateway that runs (a second start on the same state folder): refused
    // before its record is touched, or the running one could not be told from a leftover later.
    const other = await owner.runningOwner()
    if (other !== undefined && (await linkInfo(vpn.interfaceName, command)) !== null) {
      throw new VpnError(
        'VPN_ERR_INTERFACE_EXISTS',
        `Interface ${vpn.interfaceName} already exists: the gateway running as pid ${other} brought it up`,
      )
    }
    // Claimed before the interface is made: a gateway killed during the bring-up leaves a record
    // whose PID no longer runs, so the next start removes what it made instead of refusing it.
    await owner.claim()
    try {
      tunnel = await bringUp(toTunnelConfig(vpn), { ...command, cloudAddress, pidFile: owner.pidFile })
    } catch (err) {
      await owner.release().catch(() => undefined)
      throw err
    }
  } else {
    logger.info(
      { interface: vpn.interfaceName },
      `vpn tunnel ${vpn.interfaceName} is managed by the system; the gateway only watches its health`,
    )
  }
  const state$ = new BehaviorSubject<TunnelState | null>(null)
  let reportLost: ((err: Error) => void) | undefined
  const lost =
    tunnel === undefined
      ? undefined
      : new Promise<Error>((resolve) => {
          reportLost = resolve
        })
  const subscription: Subscription = watchTunnel(toWatchTarget(vpn), { ...command, cloudAddress }).subscribe(
    (state) => {
      const previous = state$.value
      if (previous === null || previous.healthy !== state.healthy || previous.up !== state.up) {
        logTransition(logger, state, previous)
      }
      state$.next(state)
      // Nothing brings a managed tunnel back by itself, and held messages would wait for ever.
      if (state.missing && reportLost) {
        reportLost(
          new VpnError(
            'VPN_ERR_TUNNEL_LOST',
            `the tunnel ${vpn.interfaceName} that the gateway brought up is gone (its wireguard-go exited, or the interface was deleted); the gateway stops so that its supervisor starts it and the tunnel again`,
          ),
        )
        reportLost = undefined
      }
    },
  )
  metrics.gauge('vpn_tunnel_up', () => (state$.value?.up ? 1 : 0))
  metrics.gauge('vpn_tunnel_healthy', () => (state$.value?.healthy ? 1 : 0))
  metrics.gauge('vpn_handshake_age_seconds', () => {
    const age = state$.value?.handshakeAgeMs
    return age === null || age === undefined ? -1 : age / 1000
  })
  let closing: Promise<void> | undefined
  return {
    mode,
    cloudAddress,
    ...(lost && { lost }),
    get state() {
      return state$.value
    },
    gate$: state$.pipe(
      map((s) => s?.healthy === true),
      distinctUntilChanged(),
    ),
    // A failed poll (a tool timing out under load) changes nothing: the gate keeps what the last
    // poll that worked said, and stays closed until one has.
    connectGate$: state$.pipe(
      scan((inPlace, s) => (s === null ? false : s.pollFailed ? inPlace : s.inPlace), false),
      distinctUntilChanged(),
    ),
    close() {
      closing ??= (async () => {
        subscription.unsubscribe()
        state$.complete()
        await tunnel?.down()
        await owner?.release()
      })()
      return closing
    },
  }
}
