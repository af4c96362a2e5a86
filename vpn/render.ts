import { parseCidr, parseEndpoint } from './cidr.js'
import type { ResolvedTunnelConfig } from './config.js'
import { VpnError } from './errors.js'
import { isWireGuardKey, type SecretKey } from './secret.js'

export interface PeerSettings {
  publicKey: string
  presharedKey?: SecretKey
  endpoint?: string
  allowedIps: readonly string[]
  persistentKeepalive?: number
}

/** What `wg setconf` sets: the keys and the peer, not addresses, MTU or routes (those are `ip`'s). */
export interface InterfaceSettings {
  privateKey: SecretKey
  listenPort?: number
  peers: readonly PeerSettings[]
}

function checkPort(value: number, what: string, min: number): number {
  if (!Number.isInteger(value) || value < min || value > 65535) {
    throw new VpnError(
      'VPN_ERR_BAD_CONFIG',
      `Expected ${what} to be an integer from ${min} to 65535, got ${value}`,
    )
  }
  return value
}

/**
 * The `wg setconf` text for `settings`. It holds the private key: pass it on stdin (`input`),
 * never write it to a file or log it. Every value is checked first, so nothing can add a line.
 */
export function renderInterfaceConfig(settings: InterfaceSettings): string {
  const lines = ['[Interface]', `PrivateKey = ${settings.privateKey.reveal()}`]
  if (settings.listenPort !== undefined)
    lines.push(`ListenPort = ${checkPort(settings.listenPort, 'ListenPort', 1)}`)
  for (const peer of settings.peers) {
    if (!isWireGuardKey(peer.publicKey)) {
      throw new VpnError(
        'VPN_ERR_BAD_CONFIG',
        `Expected the peer public key to be a WireGuard key (44 characters of base64), got ${JSON.stringify(peer.publicKey)}`,
      )
    }
    if (peer.allowedIps.length === 0) {
      throw new VpnError('VPN_ERR_BAD_CONFIG', 'Expected at least one allowed IP for the peer, got none')
    }
    lines.push('', '[Peer]', `PublicKey = ${peer.publicKey}`)
    if (peer.presharedKey !== undefined) lines.push(`PresharedKey = ${peer.presharedKey.reveal()}`)
    if (peer.endpoint !== undefined) {
      const { host, port, literal } = parseEndpoint(peer.endpoint)
      lines.push(`Endpoint = ${literal && host.includes(':') ? `[${host}]` : host}:${port}`)
    }
    lines.push(`AllowedIPs = ${peer.allowedIps.map((c) => parseCidr(c, 'allowed IP').text).join(', ')}`)
    if (peer.persistentKeepalive !== undefined) {
      lines.push(`PersistentKeepalive = ${checkPort(peer.persistentKeepalive, 'PersistentKeepalive', 1)}`)
    }
  }
  return `${lines.join('\n')}\n`
}

/** The settings of a resolved tunnel config with its keys read from their files. */
export function interfaceSettingsOf(
  config: ResolvedTunnelConfig,
  keys: { privateKey: SecretKey; presharedKey?: SecretKey | undefined },
): InterfaceSettings {
  const peer: PeerSettings = {
    publicKey: config.peer.publicKey,
    allowedIps: config.peer.allowedIps.map((c) => c.text),
  }
  if (keys.presharedKey !== undefined) peer.presharedKey = keys.presharedKey
  if (config.peer.endpointText !== undefined) peer.endpoint = config.peer.endpointText
  if (config.peer.persistentKeepalive !== undefined)
    peer.persistentKeepalive = config.peer.persistentKeepalive
  const settings: InterfaceSettings = { privateKey: keys.privateKey, peers: [peer] }
  if (config.listenPort !== undefined) settings.listenPort = config.listenPort
  return settings
}
