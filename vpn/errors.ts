import { EdgeGatewayError } from '../core/errors.js'

/**
 * Stable codes of the errors `vpn/` throws, each documented in docs/vpn.md. Messages quote the
 * bad value and what was expected, and never carry a key: command output is redacted first.
 */
export const VPN_ERROR_CODES = [
  /** `wg` is not installed (Debian package `wireguard-tools`). */
  'VPN_ERR_WG_NOT_FOUND',
  /** `wireguard-go` is not installed (Debian package `wireguard-go`) and the kernel has no WireGuard. */
  'VPN_ERR_WG_GO_NOT_FOUND',
  /** `ip` is not installed (Debian package `iproute2`). */
  'VPN_ERR_IP_NOT_FOUND',
  /** Another command is not installed. */
  'VPN_ERR_COMMAND_NOT_FOUND',
  /** The kernel refused an operation: the process lacks CAP_NET_ADMIN (or CAP_SYS_ADMIN for namespaces). */
  'VPN_ERR_NO_PRIVILEGE',
  /** wireguard-go cannot open /dev/net/tun. */
  'VPN_ERR_NO_TUN',
  /** A command exited with an error that has no more specific code. */
  'VPN_ERR_COMMAND_FAILED',
  /** A command did not finish within its timeout and was killed. */
  'VPN_ERR_TIMEOUT',
  /** A tunnel setting is missing, malformed or out of range. */
  'VPN_ERR_BAD_CONFIG',
  /** The cloud broker's address would not be routed through the tunnel. */
  'VPN_ERR_CLOUD_OUTSIDE_TUNNEL',
  /** The interface already exists; the gateway does not take over an interface it did not create. */
  'VPN_ERR_INTERFACE_EXISTS',
  /** A route for one of the allowed IPs already exists through another interface. */
  'VPN_ERR_ROUTE_CONFLICT',
  /** A key file does not exist. */
  'VPN_ERR_KEY_FILE_MISSING',
  /** A key file is readable or writable by group or others. */
  'VPN_ERR_KEY_FILE_MODE',
  /** A key file or a command's output does not hold a WireGuard key (32 bytes, base64). */
  'VPN_ERR_BAD_KEY',
  /** The network namespace given to a command does not exist. */
  'VPN_ERR_NETNS_NOT_FOUND',
  /** `vpn down` of a tunnel that a running gateway brought up (without `--force`). */
  'VPN_ERR_TUNNEL_IN_USE',
  /** The tunnel the gateway brought up is gone while it runs (its wireguard-go exited, or the interface was deleted). */
  'VPN_ERR_TUNNEL_LOST',
  /** `wg show` printed something that is not the dump format. */
  'VPN_ERR_PARSE',
  /** (programming error) a secret was about to be passed on a command line. */
  'VPN_ERR_SECRET_IN_ARGS',
] as const

export type VpnErrorCode = (typeof VPN_ERROR_CODES)[number]

/** What a failed command left behind, for logs; `stderr` is already redacted. */
export interface CommandDetails {
  /** The command line (argv never holds a secret). */
  command: string
  exitCode?: number
  stderr?: string
}

export class VpnError extends EdgeGatewayError {
  declare readonly code: VpnErrorCode
  readonly details: CommandDetails | undefined

  constructor(code: VpnErrorCode, message: string, options?: { cause?: unknown; details?: CommandDetails }) {
    super(code, message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.details = options?.details
  }
}
