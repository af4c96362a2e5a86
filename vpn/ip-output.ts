/** Pure parsers for the `ip` output the tunnel code reads. */

export interface RouteLookup {
  /** Interface the kernel would send the packet out of; null when the output names none. */
  dev: string | null
  /** Next hop, when the route has one. */
  via: string | null
}

/** Parses `ip route get <address>` (`10.78.0.2 dev wg0 src 10.78.0.1 uid 0\n    cache`). */
export function parseRouteGet(text: string): RouteLookup {
  const first = text.split('\n')[0] ?? ''
  return {
    dev: /\bdev (\S+)/.exec(first)?.[1] ?? null,
    via: /\bvia (\S+)/.exec(first)?.[1] ?? null,
  }
}

export interface LinkInfo {
  name: string
  flags: string[]
  mtu: number | null
  /** Administratively up (`UP` flag). */
  up: boolean
}

/** Parses one line of `ip -o link show dev <if>` (`2: wg0: <POINTOPOINT,NOARP,UP,LOWER_UP> mtu 1420 ...`). */
export function parseLinkLine(text: string): LinkInfo | null {
  const m = /^\d+:\s+([^:@\s]+)(?:@\S+)?:\s+<([^>]*)>(?:.*?\bmtu (\d+))?/.exec(text.trim())
  if (m === null) return null
  const flags = (m[2] ?? '').split(',').filter(Boolean)
  return { name: m[1] ?? '', flags, mtu: m[3] === undefined ? null : Number(m[3]), up: flags.includes('UP') }
}
