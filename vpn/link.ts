/** The `ip` steps of bringing an interface up and down. */
import { VpnError } from './errors.js'
import { type LinkInfo, parseLinkLine, parseRouteGet, type RouteLookup } from './ip-output.js'
import { type CommandOptions, type RunOptions, run } from './run.js'

function stderrOf(err: unknown): string {
  return err instanceof VpnError ? (err.details?.stderr ?? '') : ''
}

/** The link `name`, or null when there is none. */
export async function linkInfo(name: string, options: RunOptions): Promise<LinkInfo | null> {
  try {
    const { stdout } = await run('ip', ['-o', 'link', 'show', 'dev', name], options)
    return parseLinkLine(stdout)
  } catch (err) {
    if (
      err instanceof VpnError &&
      err.code === 'VPN_ERR_COMMAND_FAILED' &&
      /does not exist/.test(stderrOf(err))
    ) {
      return null
    }
    throw err
  }
}

/** Creates a kernel WireGuard interface; `unsupported` when the kernel has no WireGuard. */
export async function addKernelInterface(
  name: string,
  options: CommandOptions,
): Promise<'created' | 'unsupported'> {
  try {
    await run('ip', ['link', 'add', 'dev', name, 'type', 'wireguard'], options)
    return 'created'
  } catch (err) {
    if (
      err instanceof VpnError &&
      err.code === 'VPN_ERR_COMMAND_FAILED' &&
      /Unknown device type|not supported/i.test(stderrOf(err))
    ) {
      return 'unsupported'
    }
    throw err
  }
}

/**
 * Deletes the link `name`; false when there was none: `Cannot find device` when the name is
 * unknown, `No such device` when the link went between the lookup and the delete (a wireguard-go
 * that died takes its interface with it, a moment after its process is gone).
 */
export async function deleteLink(name: string, options: CommandOptions): Promise<boolean> {
  try {
    await run('ip', ['link', 'del', 'dev', name], options)
    return true
  } catch (err) {
    if (err instanceof VpnError && /Cannot find device|does not exist|No such device/.test(stderrOf(err)))
      return false
    throw err
  }
}

export async function addAddress(name: string, cidr: string, options: CommandOptions): Promise<void> {
  await run('ip', ['address', 'add', cidr, 'dev', name], options)
}

export async function setMtu(name: string, mtu: number, options: CommandOptions): Promise<void> {
  await run('ip', ['link', 'set', 'dev', name, 'mtu', String(mtu)], options)
}

export async function setLinkUp(name: string, options: CommandOptions): Promise<void> {
  await run('ip', ['link', 'set', 'dev', name, 'up'], options)
}

/** Routes `network` (host bits cleared) through `name`; an existing route for it is a conflict. */
export async function addRoute(name: string, network: string, options: CommandOptions): Promise<void> {
  try {
    await run('ip', ['route', 'add', network, 'dev', name], options)
  } catch (err) {
    if (err instanceof VpnError && /File exists/.test(stderrOf(err))) {
      throw new VpnError(
        'VPN_ERR_ROUTE_CONFLICT',
        `A route for ${network} already exists, so it cannot be routed through ${name}; remove that route or narrow vpn.peer.allowedIps`,
        { cause: err },
      )
    }
    throw err
  }
}

/** Where the kernel would send a packet for `address`. */
/** Where a route lookup sends traffic, for messages: `through eth0 via 192.168.1.1`, or `nowhere`. */
export function describeRoute(route: RouteLookup | null): string {
  if (route === null) return 'nowhere'
  return `through ${route.dev ?? 'an unknown interface'}${route.via === null ? '' : ` via ${route.via}`}`
}

export async function routeTo(address: string, options: CommandOptions): Promise<RouteLookup | null> {
  try {
    const { stdout } = await run('ip', ['route', 'get', address], options)
    return parseRouteGet(stdout)
  } catch (err) {
    if (err instanceof VpnError && /unreachable/i.test(stderrOf(err))) return null
    throw err
  }
}
