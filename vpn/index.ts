export { type Cidr, cidrContains, type Endpoint, networkOf, parseCidr, parseEndpoint } from './cidr.js'
export {
  type AllowedIpsHolder,
  checkCloudInsideTunnel,
  type Implementation,
  type PeerConfig,
  type ResolvedTunnelConfig,
  resolveTunnelConfig,
  TUNNEL_DEFAULTS,
  type TunnelConfig,
} from './config.js'
export { Daemon, type DaemonExit, type DaemonOptions } from './daemon.js'
export { parseWgDump, type WgInterfaceDump, type WgPeerDump } from './dump.js'
export { type CommandDetails, VPN_ERROR_CODES, VpnError, type VpnErrorCode } from './errors.js'
export { TOOL_PACKAGES } from './failure.js'
export { healthChanges, pollTunnel, readTunnelSample, type WatchTarget, watchTunnel } from './health.js'
export { evaluateHealth, type TunnelSample, type TunnelState } from './health-state.js'
export { type LinkInfo, parseLinkLine, parseRouteGet, type RouteLookup } from './ip-output.js'
export { readKeyFile, writeKeyFile } from './key-files.js'
export {
  type CreatedKeys,
  type CreateKeysOptions,
  createKeys,
  derivePublicKey,
  generatePresharedKey,
  generatePrivateKey,
  readPublicKey,
} from './keys.js'
export { bringUpCloudPeer, type CloudPeerConfig, mirrorForCloud } from './peer.js'
export { redact } from './redact.js'
export { type InterfaceSettings, type PeerSettings, renderInterfaceConfig } from './render.js'
export {
  type CommandOptions,
  DEFAULT_TIMEOUT_MS,
  type RunOptions,
  type RunResult,
  run,
  spawnDaemon,
} from './run.js'
export { isWireGuardKey, REDACTED, SecretKey } from './secret.js'
export { type BringUpOptions, bringDown, bringUp, type StartOptions, type Tunnel } from './tunnel.js'
