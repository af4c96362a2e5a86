import { isIP } from 'node:net'
import { VpnError } from './errors.js'

/** An IP prefix, parsed: `bits` is the address as an integer of 32 or 128 bits. */
export interface Cidr {
  family: 4 | 6
  bits: bigint
  prefix: number
  /** As written, trimmed. */
  text: string
}

function ipv4ToBigInt(ip: string): bigint {
  return ip.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n)
}

function ipv6ToBigInt(ip: string): bigint {
  let text = ip
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)
  if (v4?.[1] !== undefined) {
    const n = ipv4ToBigInt(v4[1])
    text = `${text.slice(0, -v4[1].length)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`
  }
  const [head = '', tail] = text.split('::')
  const headGroups = head === '' ? [] : head.split(':')
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':')
  const fill = tail === undefined ? [] : Array(8 - headGroups.length - tailGroups.length).fill('0')
  return [...headGroups, ...fill, ...tailGroups].reduce((acc, g) => (acc << 16n) | BigInt(`0x${g}`), 0n)
}

/** An IP literal (no brackets, no zone) as an integer, or null when it is not one. */
export function parseIp(ip: string): { family: 4 | 6; bits: bigint } | null {
  const family = isIP(ip)
  if (family === 4) return { family, bits: ipv4ToBigInt(ip) }
  if (family === 6 && !ip.includes('%')) return { family, bits: ipv6ToBigInt(ip) }
  return null
}

/** Parses `10.78.0.1/30` or `fd78::1/64`; a bare address is a host prefix (/32, /128). */
export function parseCidr(text: string, what = 'address'): Cidr {
  const trimmed = text.trim()
  const [ip = '', prefixText, extra] = trimmed.split('/')
  const parsed = parseIp(ip)
  const max = parsed?.family === 6 ? 128 : 32
  const prefix = prefixText === undefined ? max : Number(prefixText)
  const prefixOk = prefixText === undefined || /^\d{1,3}$/.test(prefixText)
  if (parsed === null || extra !== undefined || !prefixOk || prefix > max) {
    throw new VpnError(
      'VPN_ERR_BAD_CONFIG',
      `Expected the ${what} to be an IP prefix such as 10.78.0.1/30 or fd78::1/64, got ${JSON.stringify(text)}`,
    )
  }
  return { family: parsed.family, bits: parsed.bits, prefix, text: trimmed }
}

function mask(family: 4 | 6, prefix: number): bigint {
  const width = family === 4 ? 32n : 128n
  const all = (1n << width) - 1n
  return (all >> BigInt(prefix)) ^ all
}

/** Whether the prefix `cidr` contains the IP literal `ip` (families must match). */
export function cidrContains(cidr: Cidr, ip: string): boolean {
  let parsed = parseIp(ip)
  // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is that IPv4 address on a dual-stack socket.
  if (parsed?.family === 6 && cidr.family === 4 && parsed.bits >> 32n === 0xffffn) {
    parsed = { family: 4, bits: parsed.bits & 0xffffffffn }
  }
  if (parsed === null || parsed.family !== cidr.family) return false
  const m = mask(cidr.family, cidr.prefix)
  return (parsed.bits & m) === (cidr.bits & m)
}

function formatBits(family: 4 | 6, bits: bigint): string {
  if (family === 4) {
    return [24n, 16n, 8n, 0n].map((shift) => ((bits >> shift) & 0xffn).toString()).join('.')
  }
  const groups: string[] = []
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(((bits >> shift) & 0xffffn).toString(16))
  return groups.join(':')
}

/** The network of `cidr` (host bits cleared), as `ip route` wants it: `10.78.0.0/30`. */
export function networkOf(cidr: Cidr): string {
  return `${formatBits(cidr.family, cidr.bits & mask(cidr.family, cidr.prefix))}/${cidr.prefix}`
}

/** Whether two prefixes are the same network (host bits ignored). */
export function sameNetwork(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.prefix === b.prefix && networkOf(a) === networkOf(b)
}

/** Host part of a WireGuard endpoint (`1.2.3.4:51820`, `[fd00::1]:51820`, `vpn.example.com:51820`). */
export interface Endpoint {
  host: string
  port: number
  /** Whether `host` is an IP literal (a name is resolved by `wg` when the config is set). */
  literal: boolean
}

const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/

export function parseEndpoint(text: string): Endpoint {
  const bad = () =>
    new VpnError(
      'VPN_ERR_BAD_CONFIG',
      `Expected the peer endpoint to be host:port (such as 203.0.113.5:51820 or [2001:db8::5]:51820), got ${JSON.stringify(text)}`,
    )
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(text)
  if (m === null) throw bad()
  const port = Number(m[3])
  if (port < 1 || port > 65535) throw bad()
  if (m[1] !== undefined) {
    if (isIP(m[1]) !== 6) throw bad()
    return { host: m[1], port, literal: true }
  }
  const host = m[2] ?? ''
  if (isIP(host) === 4) return { host, port, literal: true }
  if (!HOSTNAME.test(host)) throw bad()
  return { host, port, literal: false }
}
