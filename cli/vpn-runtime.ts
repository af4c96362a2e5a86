/**
 * The tunnel while `edge-gateway start` runs (docs/vpn.md): without a `vpn` section it only says
 * that the VPN is off; with one, cli/vpn-tunnel.ts (loaded only then, with the `vpn/` code and
 * execa) brings it up, watches it and feeds its health to the bridge.
 */
import type { Observable } from 'rxjs'
import type { GatewayConfig } from '../config/index.js'
import type { Logger } from '../core/logger.js'
import type { Metrics } from '../core/metrics.js'
import type { TunnelState } from '../vpn/health-state.js'

/** `off`: no `vpn` section; `managed`: the gateway brings the tunnel up; `system`: it only watches. */
export type VpnMode = 'off' | 'managed' | 'system'

export interface VpnRuntime {
  readonly mode: VpnMode
  /** The latest health poll; null with the VPN off or before the first poll. */
  readonly state: TunnelState | null
  /** true while the tunnel is healthy; undefined with the VPN off (the bridge then never holds). */
  readonly gate$: Observable<boolean> | undefined
  /**
   * true while the tunnel is in place (its interface up, the cloud broker's address routed through
   * it): the bridge connects only then, and cuts its connection when it turns false. Undefined with
   * the VPN off.
   */
  readonly connectGate$?: Observable<boolean>
  /**
   * Resolves when a tunnel the gateway brought up is found gone while it runs (its wireguard-go
   * exited, or someone deleted the interface): the gateway then stops, so that its supervisor
   * starts it, and the tunnel, again. Never with the VPN off or managed by the system.
   */
  readonly lost?: Promise<Error>
  /**
   * The cloud broker's address checked to be inside the tunnel at start, whose route every poll
   * checks: the cloud link connects to it (cloudLinkConfig). Undefined with the VPN off.
   */
  readonly cloudAddress?: string
  /** Stops watching and brings a managed tunnel down. Safe to call twice. */
  close(): Promise<void>
}

/**
 * The cloud section the link connects with. With a tunnel, a `cloud.host` name is not looked up
 * again at each connect: the link connects to the address checked at start (inside the tunnel, and
 * route-checked by every poll), and the name stays the TLS server name, so the broker's certificate
 * is checked against it as before. A name that later resolved elsewhere would otherwise take the
 * link outside what the checks cover.
 */
export function cloudLinkConfig<C extends { host: string; servername?: string | undefined }>(
  cloud: C,
  cloudAddress: string | undefined,
): C {
  if (cloudAddress === undefined || cloudAddress === cloud.host) return cloud
  return { ...cloud, host: cloudAddress, servername: cloud.servername ?? cloud.host }
}

const OFF: VpnRuntime = {
  mode: 'off',
  state: null,
  gate$: undefined,
  close: async () => undefined,
}

/**
 * Brings the tunnel up (when `vpn.manage` is true) and starts watching it. Call before the bridge
 * connects; pass `gate$` to the bridge; `close()` on the way out, also when a later start-up
 * step fails.
 */
export async function startVpn(
  config: Readonly<GatewayConfig>,
  options: { logger: Logger; metrics: Metrics },
): Promise<VpnRuntime> {
  const vpn = config.vpn
  if (vpn === undefined) {
    options.logger.info(
      { event: 'vpn_off' },
      `vpn off (no vpn section): the bridge connects to ${config.cloud.host} over the host's own routes`,
    )
    return OFF
  }
  return (await import('./vpn-tunnel.js')).startTunnel(config, vpn, options)
}
