/**
 * The `vpn` section: the WireGuard tunnel the cloud link runs in (docs/vpn.md). The schema checks
 * each field; `vpnProblems` (called from checks.ts) checks the rules between fields with the
 * same code `vpn/` uses when it brings the tunnel up; `toTunnelConfig` maps the section to
 * `vpn/`'s `TunnelConfig`.
 */
import { isIP } from 'node:net'
import { z } from 'zod'
import { describeError } from '../core/errors.js'
import { checkCloudInsideTunnel, resolveTunnelConfig, type TunnelConfig } from '../vpn/config.js'
import type { WatchTarget } from '../vpn/health.js'
import { isWireGuardKey } from '../vpn/secret.js'
import { secretFilePath } from './secret-path.js'

const prefixes = z.array(z.string().min(1).max(64)).min(1).max(64)

export const vpnSchema = z.strictObject({
  /** The WireGuard interface, e.g. `wg0`. */
  interfaceName: z
    .string()
    .regex(/^[A-Za-z0-9_=+.-]{1,15}$/, '1 to 15 letters, digits or _=+.- (a Linux interface name)')
    .refine(
      (name) => name !== 'all' && name !== 'interfaces',
      'a keyword of `wg show`; choose another (wg0)',
    ),
  /**
   * true (default): the gateway brings the tunnel up before the bridge and down on exit.
   * false: the system manages the interface (wg-quick, systemd-networkd); the gateway only
   * watches its health.
   */
  manage: z.boolean().default(true),
  implementation: z.enum(['auto', 'kernel', 'wireguard-go']).default('auto'),
  /** The gateway's private key (base64), mode 0600; required when `manage` is true. */
  privateKeyFile: secretFilePath.optional(),
  listenPort: z.number().int().min(1).max(65535).optional(),
  /** The interface's own addresses with prefix length; required when `manage` is true. */
  addresses: prefixes.optional(),
  mtu: z.number().int().min(1280).max(9000).default(1420),
  peer: z.strictObject({
    publicKey: z.string().refine(isWireGuardKey, 'a WireGuard public key (44 characters of base64)'),
    presharedKeyFile: secretFilePath.optional(),
    /** `host:port` of the cloud end; required when `manage` is true. */
    endpoint: z.string().min(1).max(300).optional(),
    /** Routed into the tunnel and accepted from it; must contain the cloud broker's address. */
    allowedIps: prefixes,
    persistentKeepalive: z.number().int().min(1).max(65535).optional(),
  }),
  /** Healthy while the last handshake (or authenticated traffic) is younger than this. */
  healthyHandshakeSeconds: z.number().int().min(1).max(86_400).default(180),
  /** How often health polls `wg show`. */
  pollMs: z.number().int().min(100).max(3_600_000).default(5000),
  /** Network namespace of the interface (labs and tests); the gateway's own sockets stay where it runs. */
  netns: z
    .string()
    .regex(/^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$/, 'a network namespace name')
    .optional(),
})

export type VpnConfig = z.output<typeof vpnSchema>

/** Fields the gateway needs to bring the tunnel up itself. */
const MANAGED_FIELDS = ['privateKeyFile', 'addresses', 'peer.endpoint'] as const

function managedFieldsMissing(vpn: VpnConfig): string[] {
  const present: Record<(typeof MANAGED_FIELDS)[number], unknown> = {
    privateKeyFile: vpn.privateKeyFile,
    addresses: vpn.addresses,
    'peer.endpoint': vpn.peer.endpoint,
  }
  return MANAGED_FIELDS.filter((field) => present[field] === undefined)
}

/**
 * The section as `vpn/`'s `TunnelConfig`, for `bringUp` and `watchTunnel`. Throws unless the
 * fields a managed tunnel needs are there (the config check refuses such a config earlier).
 */
export function toTunnelConfig(vpn: VpnConfig): TunnelConfig {
  const missing = managedFieldsMissing(vpn)
  if (vpn.privateKeyFile === undefined || vpn.addresses === undefined || missing.length > 0) {
    throw new Error(`vpn: ${missing.map((f) => `vpn.${f}`).join(', ')} missing for a managed tunnel`)
  }
  const peer: TunnelConfig['peer'] = { publicKey: vpn.peer.publicKey, allowedIps: [...vpn.peer.allowedIps] }
  if (vpn.peer.endpoint !== undefined) peer.endpoint = vpn.peer.endpoint
  if (vpn.peer.presharedKeyFile !== undefined) peer.presharedKeyFile = vpn.peer.presharedKeyFile
  if (vpn.peer.persistentKeepalive !== undefined) peer.persistentKeepalive = vpn.peer.persistentKeepalive
  const config: TunnelConfig = {
    interfaceName: vpn.interfaceName,
    implementation: vpn.implementation,
    privateKeyFile: vpn.privateKeyFile,
    addresses: [...vpn.addresses],
    mtu: vpn.mtu,
    peer,
    healthyHandshakeSeconds: vpn.healthyHandshakeSeconds,
    pollMs: vpn.pollMs,
  }
  if (vpn.listenPort !== undefined) config.listenPort = vpn.listenPort
  return config
}

/** What health watching needs; works whether or not the gateway manages the interface. */
export function toWatchTarget(vpn: VpnConfig): WatchTarget {
  return {
    interfaceName: vpn.interfaceName,
    peer: { publicKey: vpn.peer.publicKey },
    pollMs: vpn.pollMs,
    healthyHandshakeSeconds: vpn.healthyHandshakeSeconds,
  }
}

/**
 * Cross-field rules of the `vpn` section, each as `path: message`: the fields a managed tunnel
 * needs, the checks `vpn/` makes before it creates anything (prefixes, endpoint outside the
 * tunnel), and the cloud broker inside the tunnel. A `cloud.host` that is a name is checked
 * when the gateway starts, once it is resolved.
 */
export function vpnProblems(vpn: VpnConfig | undefined, cloudHost: string): string[] {
  if (vpn === undefined) return []
  const problems: string[] = []
  if (vpn.manage) {
    for (const field of managedFieldsMissing(vpn)) {
      problems.push(
        `vpn.${field}: required when vpn.manage is true (the gateway brings the tunnel up itself)`,
      )
    }
    if (problems.length === 0) {
      try {
        resolveTunnelConfig(toTunnelConfig(vpn))
      } catch (err) {
        problems.push(`vpn: ${describeError(err)}`)
        return problems
      }
    }
  }
  if (isIP(cloudHost) !== 0) {
    try {
      checkCloudInsideTunnel(vpn, cloudHost)
    } catch (err) {
      problems.push(`cloud.host: ${describeError(err)}`)
    }
  }
  return problems
}

/** The section with its file paths resolved against the config's folder. */
export function resolveVpnPaths(vpn: VpnConfig, at: (path: string) => string): VpnConfig {
  return {
    ...vpn,
    ...(vpn.privateKeyFile !== undefined && { privateKeyFile: at(vpn.privateKeyFile) }),
    peer: {
      ...vpn.peer,
      ...(vpn.peer.presharedKeyFile !== undefined && { presharedKeyFile: at(vpn.peer.presharedKeyFile) }),
    },
  }
}

/** The key files to check for mode 0600, as `[config path, file]`. */
export function vpnSecretFiles(vpn: VpnConfig | undefined): Array<[string, string]> {
  if (vpn === undefined) return []
  const files: Array<[string, string]> = []
  if (vpn.privateKeyFile !== undefined) files.push(['vpn.privateKeyFile', vpn.privateKeyFile])
  if (vpn.peer.presharedKeyFile !== undefined) {
    files.push(['vpn.peer.presharedKeyFile', vpn.peer.presharedKeyFile])
  }
  return files
}
