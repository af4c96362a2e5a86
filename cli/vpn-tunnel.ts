/**
 * The tunnel of a config with a `vpn` section (cli/vpn-runtime.ts loads this module only then):
 * brought up before the bridge connects (unless the system manages it), watched for health, its
 * health fed to the bridge as `gate$`, and brought down when the gateway stops.
 */
import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { BehaviorSubject, distinctUntilChanged, map, type Subscription } from 'rxjs'
import type { GatewayConfig, VpnConfig } from '../config/index.js'
import { toTunnelConfig, toWatchTarget } from '../config/vpn-schema.js'
import type { Logger } from '../core/logger.js'
import type { Metrics } from '../core/metrics.js'
import { checkCloudInsideTunnel } from '../vpn/config.js'
import { VpnError } from '../vpn/errors.js'
import { watchTunnel } from '../vpn/health.js'
import type { TunnelState } from '../vpn/health-state.js'
import { bringUp, type Tunnel } from '../vpn/tunnel.js'
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
  if (vpn.manage) {
    tunnel = await bringUp(toTunnelConfig(vpn), { ...command, cloudAddress })
  } else {
    logger.info(
      { interface: vpn.interfaceName },
      `vpn tunnel ${vpn.interfaceName} is managed by the system; the gateway only watches its health`,
    )
  }
  const state$ = new BehaviorSubject<TunnelState | null>(null)
  const subscription: Subscription = watchTunnel(toWatchTarget(vpn), command).subscribe((state) => {
    const previous = state$.value
    if (previous === null || previous.healthy !== state.healthy || previous.up !== state.up) {
      logTransition(logger, state, previous)
    }
    state$.next(state)
  })
  metrics.gauge('vpn_tunnel_up', () => (state$.value?.up ? 1 : 0))
  metrics.gauge('vpn_tunnel_healthy', () => (state$.value?.healthy ? 1 : 0))
  metrics.gauge('vpn_handshake_age_seconds', () => {
    const age = state$.value?.handshakeAgeMs
    return age === null || age === undefined ? -1 : age / 1000
  })
  let closing: Promise<void> | undefined
  return {
    mode,
    get state() {
      return state$.value
    },
    gate$: state$.pipe(
      map((s) => s?.healthy === true),
      distinctUntilChanged(),
    ),
    close() {
      closing ??= (async () => {
        subscription.unsubscribe()
        state$.complete()
        await tunnel?.down()
      })()
      return closing
    },
  }
}
