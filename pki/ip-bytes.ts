import { isIP } from 'node:net'

/**
 * Network-order bytes of an IPv4 or IPv6 address as a binary string (what forge
 * wants for an iPAddress SAN), or null if `ip` is not a plain address. forge's
 * own parser mangles forms like `::ffff:10.0.0.1`, so it is not used. Zone ids
 * (`fe80::1%eth0`) are refused: they mean nothing in a certificate.
 */
export function ipToBytes(ip: string): string | null {
  const family = isIP(ip)
  if (family === 4) return String.fromCharCode(...ipv4Octets(ip))
  if (family === 6 && !ip.includes('%')) return String.fromCharCode(...ipv6Octets(ip))
  return null
}

function ipv4Octets(ip: string): number[] {
  return ip.split('.').map((part) => Number.parseInt(part, 10))
}

/** `ip` has passed `isIP(ip) === 6`, so it is well formed. */
function ipv6Octets(ip: string): number[] {
  return ipv6Groups(dottedTailToHex(ip)).flatMap((group) => {
    const value = Number.parseInt(group, 16)
    return [value >> 8, value & 0xff]
  })
}

/** `::ffff:10.0.0.1` becomes `::ffff:a00:1`. */
function dottedTailToHex(ip: string): string {
  const lastColon = ip.lastIndexOf(':')
  const tail = ip.slice(lastColon + 1)
  if (!tail.includes('.')) return ip
  const [a, b, c, d] = ipv4Octets(tail) as [number, number, number, number]
  return `${ip.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
}

/** The eight groups, with the `::` run (if any) expanded to zeros. */
function ipv6Groups(ip: string): string[] {
  const gap = ip.indexOf('::')
  if (gap === -1) return ip.split(':')
  const left = splitGroups(ip.slice(0, gap))
  const right = splitGroups(ip.slice(gap + 2))
  return [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right]
}

function splitGroups(text: string): string[] {
  return text === '' ? [] : text.split(':')
}
