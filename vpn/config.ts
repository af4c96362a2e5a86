import { type Cidr, cidrContains, type Endpoint, parseCidr, parseEndpoint, parseIp } from './cidr.js'
import { VpnError } from './errors.js'
import { checkInterfaceName } from './names.js'
import { isWireGuardKey } from './secret.js'

export type Implementation = 'auto' | 'kernel' | 'wireguard-go'

/** The other end of the tunnel: for the gateway, the cloud. */
export interface PeerConfig {
  /** The peer's public key (base64). */
  publicKey: string
  /** Optional preshared key file (0600), for post-quantum resistance; both ends need the same key. */
  presharedKeyFile?: string
  /** `host:port` of the peer; required on the gateway, optional on the cloud end (it learns it). */
  endpoint?: string
  /** Prefixes routed into the tunnel and accepted from the peer; must contain the cloud broker. */
  allowedIps: string[]
  /** Seconds between keepalives (1 to 65535); unset means off. */
  persistentKeepalive?: number
}

/** The `vpn` section of the gateway config (docs/vpn.md). */
export interface TunnelConfig {
  /** Interface name, 1 to 15 characters (`wg0`). */
  interfaceName: string
  /** `auto` (default): kernel WireGuard when the kernel has it, else wireguard-go. */
  implementation?: Implementation
  /** The gateway's private key, base64, mode 0600 (written by `edge-gateway vpn keys`). */
  privateKeyFile: string
  /** UDP port to listen on; unset picks a random one (fine for the side that initiates). */
  listenPort?: number
  /** The interface's own addresses with prefix length (`10.78.0.1/30`). */
  addresses: string[]
  /** Interface MTU, 1280 to 9000; default 1420. */
  mtu?: number
  peer: PeerConfig
  /** The tunnel is healthy while the last handshake (or authenticated traffic) is younger than this; default 180. */
  healthyHandshakeSeconds?: number
  /** How often health polls `wg show`, in ms; default 5000. */
  pollMs?: number
}

export const TUNNEL_DEFAULTS = {
  implementation: 'auto',
  mtu: 1420,
  healthyHandshakeSeconds: 180,
  pollMs: 5000,
} as const satisfies Partial<TunnelConfig>

/** A validated config with defaults filled in and prefixes parsed; frozen. */
export interface ResolvedTunnelConfig {
  readonly interfaceName: string
  readonly implementation: Implementation
  readonly privateKeyFile: string
  readonly listenPort: number | undefined
  readonly addresses: readonly Cidr[]
  readonly mtu: number
  readonly peer: {
    readonly publicKey: string
    readonly presharedKeyFile: string | undefined
    readonly endpoint: Endpoint | undefined
    readonly endpointText: string | undefined
    readonly allowedIps: readonly Cidr[]
    readonly persistentKeepalive: number | undefined
  }
  readonly healthyHandshakeSeconds: number
  readonly pollMs: number
}

function bad(message: string): VpnError {
  return new VpnError('VPN_ERR_BAD_CONFIG', message)
}

function integer(value: unknown, path: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw bad(`Expected vpn.${path} to be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`)
  }
  return value
}

function optionalInteger(value: unknown, path: string, min: number, max: number): number | undefined {
  return value === undefined ? undefined : integer(value, path, min, max)
}

function nonEmptyList(value: unknown, path: string): string[] {
  if (!Array.isArray(value) || value.length === 0 || !value.every((v) => typeof v === 'string')) {
    throw bad(`Expected vpn.${path} to be a non-empty list of IP prefixes, got ${JSON.stringify(value)}`)
  }
  return value
}

function path(value: unknown, name: string): string {
  if (typeof value !== 'string' || value === '' || value.includes('\0')) {
    throw bad(`Expected vpn.${name} to be a file path, got ${JSON.stringify(value)}`)
  }
  return value
}

/**
 * Checks every field and the cross-field rules, fills defaults, and returns a frozen copy. The
 * endpoint is optional here; `bringUp` (the gateway side) requires it.
 */
export function resolveTunnelConfig(config: TunnelConfig): ResolvedTunnelConfig {
  checkInterfaceName(config.interfaceName)
  const implementation = config.implementation ?? TUNNEL_DEFAULTS.implementation
  if (!['auto', 'kernel', 'wireguard-go'].includes(implementation)) {
    throw bad(
      `Expected vpn.implementation to be auto, kernel or wireguard-go, got ${JSON.stringify(implementation)}`,
    )
  }
  const peer = config.peer
  if (typeof peer?.publicKey !== 'string' || !isWireGuardKey(peer.publicKey)) {
    throw bad(
      `Expected vpn.peer.publicKey to be a WireGuard public key (44 characters of base64), got ${JSON.stringify(peer?.publicKey)}`,
    )
  }
  const endpoint = peer.endpoint === undefined ? undefined : parseEndpoint(peer.endpoint)
  const allowedIps = nonEmptyList(peer.allowedIps, 'peer.allowedIps').map((c) => parseCidr(c, 'allowed IP'))
  const addresses = nonEmptyList(config.addresses, 'addresses').map((c) => parseCidr(c, 'interface address'))
  if (endpoint?.literal) {
    const inside = allowedIps.find((c) => cidrContains(c, endpoint.host))
    if (inside !== undefined) {
      throw bad(
        `The peer endpoint ${endpoint.host} is inside vpn.peer.allowedIps (${inside.text}): the tunnel's own packets would be routed into the tunnel; narrow allowedIps to the cloud side's tunnel addresses`,
      )
    }
  }
  const resolved: ResolvedTunnelConfig = {
    interfaceName: config.interfaceName,
    implementation,
    privateKeyFile: path(config.privateKeyFile, 'privateKeyFile'),
    listenPort: optionalInteger(config.listenPort, 'listenPort', 1, 65535),
    addresses,
    mtu: integer(config.mtu ?? TUNNEL_DEFAULTS.mtu, 'mtu', 1280, 9000),
    peer: {
      publicKey: peer.publicKey,
      presharedKeyFile:
        peer.presharedKeyFile === undefined
          ? undefined
          : path(peer.presharedKeyFile, 'peer.presharedKeyFile'),
      endpoint,
      endpointText: peer.endpoint,
      allowedIps,
      persistentKeepalive: optionalInteger(peer.persistentKeepalive, 'peer.persistentKeepalive', 1, 65535),
    },
    healthyHandshakeSeconds: integer(
      config.healthyHandshakeSeconds ?? TUNNEL_DEFAULTS.healthyHandshakeSeconds,
      'healthyHandshakeSeconds',
      1,
      86_400,
    ),
    pollMs: integer(config.pollMs ?? TUNNEL_DEFAULTS.pollMs, 'pollMs', 100, 3_600_000),
  }
  return Object.freeze({
    ...resolved,
    addresses: Object.freeze([...resolved.addresses]),
    peer: Object.freeze({ ...resolved.peer, allowedIps: Object.freeze([...resolved.peer.allowedIps]) }),
  })
}

/** What `checkCloudInsideTunnel` needs: the peer's allowed IPs, as text or parsed. */
export interface AllowedIpsHolder {
  readonly peer: { readonly allowedIps: readonly (string | Cidr)[] }
}

/**
 * Refuses a config that would route the cloud broker's address outside the tunnel: `cloudAddress`
 * (an IP literal; resolve a host name first and check every address) must be inside one of the
 * peer's allowed IPs. Takes a whole `TunnelConfig`, a resolved one, or just the allowed IPs (the
 * gateway's config check, where the system may manage the interface).
 */
export function checkCloudInsideTunnel(config: AllowedIpsHolder, cloudAddress: string): void {
  const allowed = config.peer.allowedIps.map((c) => (typeof c === 'string' ? parseCidr(c, 'allowed IP') : c))
  if (parseIp(cloudAddress) === null) {
    throw bad(
      `Expected the cloud broker address to be an IP address inside the tunnel, got ${JSON.stringify(cloudAddress)}; resolve the host name first`,
    )
  }
  if (!allowed.some((c) => cidrContains(c, cloudAddress))) {
    throw new VpnError(
      'VPN_ERR_CLOUD_OUTSIDE_TUNNEL',
      `The cloud broker address ${cloudAddress} is not inside vpn.peer.allowedIps (${allowed.map((c) => c.text).join(', ')}): it would be routed outside the tunnel; add its tunnel prefix to allowedIps`,
    )
  }
}
