import { VpnError } from './errors.js'

/** Linux interface names: at most 15 bytes; the characters wg-quick accepts. */
const INTERFACE_NAME = /^[A-Za-z0-9_=+.-]{1,15}$/
/** Network namespace names as `ip netns` stores them under /run/netns (no slashes, no leading dot). */
const NETNS_NAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$/

/** Words `wg show` reads as keywords, not as an interface. */
const WG_KEYWORDS = new Set(['all', 'interfaces'])

export function checkInterfaceName(name: string): string {
  if (!INTERFACE_NAME.test(name)) {
    throw new VpnError(
      'VPN_ERR_BAD_CONFIG',
      `Expected an interface name of 1 to 15 letters, digits or _=+.-, got ${JSON.stringify(name)}`,
    )
  }
  if (WG_KEYWORDS.has(name)) {
    throw new VpnError(
      'VPN_ERR_BAD_CONFIG',
      `The interface name ${JSON.stringify(name)} is a keyword of \`wg show\`; choose another (wg0)`,
    )
  }
  return name
}

export function checkNetnsName(name: string): string {
  if (!NETNS_NAME.test(name)) {
    throw new VpnError(
      'VPN_ERR_BAD_CONFIG',
      `Expected a network namespace name of 1 to 64 letters, digits or _.- (not starting with a dot), got ${JSON.stringify(name)}`,
    )
  }
  return name
}
