import { VpnError } from './errors.js'
import { isWireGuardKey } from './secret.js'

/** The interface line of `wg show <if> dump`. The private key's value is dropped at parse time. */
export interface WgInterfaceDump {
  publicKey: string | null
  hasPrivateKey: boolean
  listenPort: number
  fwmark: number | null
  peers: WgPeerDump[]
}

/** A peer line of `wg show <if> dump`. The preshared key's value is dropped at parse time. */
export interface WgPeerDump {
  publicKey: string
  hasPresharedKey: boolean
  /** `host:port` the peer was last seen at or configured with; null for `(none)`. */
  endpoint: string | null
  allowedIps: string[]
  /** Unix time in seconds of the latest handshake; null when there never was one (`0`). */
  latestHandshake: number | null
  rxBytes: number
  txBytes: number
  /** Seconds; null when `off`. */
  persistentKeepalive: number | null
}

function parseError(lineNo: number, expected: string): VpnError {
  // The line itself is not quoted: its first field may be a private key.
  return new VpnError('VPN_ERR_PARSE', `wg show dump, line ${lineNo}: expected ${expected}`)
}

function count(text: string, lineNo: number, what: string): number {
  if (!/^\d+$/.test(text)) throw parseError(lineNo, `${what} as a non-negative integer`)
  const n = Number(text)
  if (!Number.isSafeInteger(n)) throw parseError(lineNo, `${what} below 2^53`)
  return n
}

function key(text: string, lineNo: number, what: string): string {
  if (!isWireGuardKey(text)) throw parseError(lineNo, `${what} as a base64 WireGuard key`)
  return text
}

function parseInterfaceLine(fields: string[], lineNo: number): WgInterfaceDump {
  if (fields.length !== 4)
    throw parseError(lineNo, `4 tab-separated fields on the interface line, got ${fields.length}`)
  const [privateKey = '', publicKey = '', port = '', fwmark = ''] = fields
  let mark: number | null = null
  if (fwmark !== 'off') {
    mark = /^0x[0-9a-f]+$/i.test(fwmark) ? Number.parseInt(fwmark, 16) : count(fwmark, lineNo, 'fwmark')
  }
  return {
    hasPrivateKey: privateKey !== '(none)' && key(privateKey, lineNo, 'the private key') !== '',
    publicKey: publicKey === '(none)' ? null : key(publicKey, lineNo, 'the public key'),
    listenPort: count(port, lineNo, 'the listen port'),
    fwmark: mark,
    peers: [],
  }
}

function parsePeerLine(fields: string[], lineNo: number): WgPeerDump {
  if (fields.length !== 8)
    throw parseError(lineNo, `8 tab-separated fields on a peer line, got ${fields.length}`)
  const [
    publicKey = '',
    psk = '',
    endpoint = '',
    allowed = '',
    handshake = '',
    rx = '',
    tx = '',
    keepalive = '',
  ] = fields
  const latest = count(handshake, lineNo, 'the latest handshake')
  return {
    publicKey: key(publicKey, lineNo, 'the peer public key'),
    hasPresharedKey: psk !== '(none)' && key(psk, lineNo, 'the preshared key') !== '',
    endpoint: endpoint === '(none)' ? null : endpoint,
    allowedIps: allowed === '(none)' ? [] : allowed.split(','),
    latestHandshake: latest === 0 ? null : latest,
    rxBytes: count(rx, lineNo, 'rx bytes'),
    txBytes: count(tx, lineNo, 'tx bytes'),
    persistentKeepalive: keepalive === 'off' ? null : count(keepalive, lineNo, 'the keepalive interval'),
  }
}

/**
 * Parses the output of `wg show <if> dump` (one interface): a first line with private key,
 * public key, listen port and fwmark, then one line per peer. Key values that are secret never
 * leave this function; only whether they are set.
 */
export function parseWgDump(text: string): WgInterfaceDump {
  const lines = text.split('\n').filter((line) => line !== '')
  const first = lines[0]
  if (first === undefined) throw parseError(1, 'the interface line, got no output')
  const dump = parseInterfaceLine(first.split('\t'), 1)
  lines.slice(1).forEach((line, i) => {
    dump.peers.push(parsePeerLine(line.split('\t'), i + 2))
  })
  return dump
}
