/**
 * The cloud end of the tunnel, for the lab and the tests: the same code as the gateway's side,
 * without the gateway-only rules (the endpoint is optional, since the cloud learns the
 * gateway's address from its handshakes, and there is no cloud broker address to check).
 */
import { resolveTunnelConfig, type TunnelConfig } from './config.js'
import { type StartOptions, startInterface, type Tunnel } from './tunnel.js'

/** The cloud side's settings: `peer` is the gateway (its public key, its tunnel address as allowed IP). */
export type CloudPeerConfig = TunnelConfig

/** Brings up the cloud end (in the tests, inside the cloud's network namespace). */
export async function bringUpCloudPeer(config: CloudPeerConfig, options: StartOptions = {}): Promise<Tunnel> {
  return startInterface(resolveTunnelConfig(config), options)
}

/**
 * The cloud side's config mirroring a gateway config: the cloud's own key and addresses, and the
 * gateway as its peer (allowed IPs: the gateway's tunnel addresses as host prefixes).
 */
export function mirrorForCloud(
  gateway: TunnelConfig,
  cloud: {
    interfaceName: string
    privateKeyFile: string
    gatewayPublicKey: string
    addresses: string[]
    listenPort: number
    implementation?: TunnelConfig['implementation']
    persistentKeepalive?: number
  },
): CloudPeerConfig {
  const peer: CloudPeerConfig['peer'] = {
    publicKey: cloud.gatewayPublicKey,
    allowedIps: gateway.addresses.map((a) => `${a.split('/')[0]}/${a.includes(':') ? 128 : 32}`),
  }
  if (gateway.peer.presharedKeyFile !== undefined) peer.presharedKeyFile = gateway.peer.presharedKeyFile
  if (cloud.persistentKeepalive !== undefined) peer.persistentKeepalive = cloud.persistentKeepalive
  const config: CloudPeerConfig = {
    interfaceName: cloud.interfaceName,
    privateKeyFile: cloud.privateKeyFile,
    listenPort: cloud.listenPort,
    addresses: cloud.addresses,
    peer,
  }
  if (cloud.implementation !== undefined) config.implementation = cloud.implementation
  if (gateway.mtu !== undefined) config.mtu = gateway.mtu
  return config
}
