import { PkiError } from './errors.js'
import { ipToBytes } from './ip-bytes.js'

/** A GeneralName as forge's subjectAltName extension takes it: 2 = dNSName, 7 = iPAddress. */
export type ForgeAltName = { type: 2; value: string } | { type: 7; value: string }

/** Letters, digits, hyphens and dots, optionally one leading `*.` label; no trailing dot. */
const DNS_NAME = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i

/**
 * IP addresses (`127.0.0.1`, `::1`) become iPAddress SANs, which is what TLS
 * clients match when they connect by address; every other string must be a DNS
 * name and becomes a dNSName SAN.
 */
export function toForgeAltNames(altNames: readonly string[]): ForgeAltName[] {
  if (!Array.isArray(altNames)) {
    throw new PkiError(
      'PKI_ERR_BAD_OPTION',
      `Expected the \`altNames\` option to be an array of strings, got \`${typeof altNames}\``,
    )
  }
  return altNames.map((name: unknown) => {
    if (typeof name !== 'string') {
      throw new PkiError(
        'PKI_ERR_BAD_ALT_NAME',
        `Expected each alt name to be a string, got \`${String(name)}\` (${typeof name})`,
      )
    }
    const ip = ipToBytes(name)
    if (ip !== null) return { type: 7, value: ip }
    if (name.length <= 253 && DNS_NAME.test(name)) return { type: 2, value: name }
    throw new PkiError(
      'PKI_ERR_BAD_ALT_NAME',
      `Expected alt name \`${name}\` to be an IPv4/IPv6 address (no zone id) or a DNS name like \`broker.example\``,
    )
  })
}
