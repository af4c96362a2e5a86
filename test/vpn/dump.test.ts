import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { parseWgDump, type WgInterfaceDump } from '../../vpn/dump.js'
import { VpnError } from '../../vpn/errors.js'
import { thrownBy } from '../helpers/catch.js'

const key = (byte: number) => Buffer.alloc(32, byte).toString('base64')
const fixture = (name: string) => readFile(new URL(`./fixtures/${name}`, import.meta.url), 'utf8')

describe('parseWgDump on captured output', () => {
  it('parses the gateway before its first handshake: handshake 0 is null, counters and keepalive are numbers', async () => {
    const dump = parseWgDump(await fixture('wg-dump-gateway-configured.txt'))
    expect(dump).toEqual<WgInterfaceDump>({
      hasPrivateKey: true,
      publicKey: key(0xa2),
      listenPort: 51820,
      fwmark: null,
      peers: [
        {
          publicKey: key(0xb2),
          hasPresharedKey: true,
          endpoint: '10.77.0.2:51821',
          allowedIps: ['10.78.0.2/32'],
          latestHandshake: null,
          rxBytes: 0,
          txBytes: 148,
          persistentKeepalive: 5,
        },
      ],
    })
  })

  it('parses the gateway after a handshake', async () => {
    const dump = parseWgDump(await fixture('wg-dump-gateway-handshake.txt'))
    expect(dump.peers).toEqual([
      {
        publicKey: key(0xb2),
        hasPresharedKey: true,
        endpoint: '10.77.0.2:51821',
        allowedIps: ['10.78.0.2/32'],
        latestHandshake: 1795420630,
        rxBytes: 184,
        txBytes: 1404,
        persistentKeepalive: 5,
      },
    ])
  })

  it('turns (none) into null and off into null on the cloud end', async () => {
    const dump = parseWgDump(await fixture('wg-dump-cloud-no-handshake.txt'))
    expect(dump).toEqual<WgInterfaceDump>({
      hasPrivateKey: true,
      publicKey: key(0xb2),
      listenPort: 51821,
      fwmark: null,
      peers: [
        {
          publicKey: key(0xa2),
          hasPresharedKey: true,
          endpoint: null,
          allowedIps: ['10.78.0.1/32'],
          latestHandshake: null,
          rxBytes: 0,
          txBytes: 0,
          persistentKeepalive: null,
        },
      ],
    })
  })

  it('parses several peers, an fwmark in hex, an IPv6 endpoint, a list of allowed IPs and an empty peer', async () => {
    const dump = parseWgDump(await fixture('wg-dump-cloud-multi-peer.txt'))
    expect(dump.fwmark).toBe(0x1234)
    expect(
      dump.peers.map((p) => [p.publicKey, p.hasPresharedKey, p.endpoint, p.allowedIps, p.latestHandshake]),
    ).toEqual([
      [key(0xa2), true, '10.77.0.1:51820', ['10.78.0.1/32'], 1795420630],
      [key(0xd2), false, '[fd00::1]:51830', ['fd78::/64', '10.78.1.0/24'], null],
      [key(0xe2), false, null, [], null],
    ])
    expect(dump.peers[1]?.persistentKeepalive).toBe(25)
  })

  it('never returns the private or preshared key', async () => {
    for (const name of ['wg-dump-gateway-handshake.txt', 'wg-dump-cloud-multi-peer.txt']) {
      const text = JSON.stringify(parseWgDump(await fixture(name)))
      expect(text).not.toContain(key(0xa1))
      expect(text).not.toContain(key(0xb1))
      expect(text).not.toContain(key(0xc1))
    }
  })

  it('reports an interface without a private key', () => {
    const dump = parseWgDump(`(none)\t(none)\t0\toff\n`)
    expect(dump).toEqual({ hasPrivateKey: false, publicKey: null, listenPort: 0, fwmark: null, peers: [] })
  })
})

describe('parseWgDump on bad input', () => {
  const good = `${key(0xa1)}\t${key(0xa2)}\t51820\toff`

  it.each([
    ['', 'wg show dump, line 1: expected the interface line, got no output'],
    [
      `${key(0xa1)}\t${key(0xa2)}\t51820`,
      'wg show dump, line 1: expected 4 tab-separated fields on the interface line, got 3',
    ],
    [
      `${good}\n${key(0xb2)}\t(none)\t(none)\t(none)\t0\t0\t0`,
      'wg show dump, line 2: expected 8 tab-separated fields on a peer line, got 7',
    ],
    [
      `${good}\n${key(0xb2)}\t(none)\t(none)\t(none)\t0\t-1\t0\toff`,
      'wg show dump, line 2: expected rx bytes as a non-negative integer',
    ],
    [
      `${good}\nnot-a-key\t(none)\t(none)\t(none)\t0\t0\t0\toff`,
      'wg show dump, line 2: expected the peer public key as a base64 WireGuard key',
    ],
    [
      `${key(0xa1)}\t${key(0xa2)}\tport\toff`,
      'wg show dump, line 1: expected the listen port as a non-negative integer',
    ],
  ])('refuses %j', (text, message) => {
    const err = thrownBy(() => parseWgDump(text))
    expect(err).toBeInstanceOf(VpnError)
    expect(err).toMatchObject({ code: 'VPN_ERR_PARSE', message })
  })

  it('does not quote the line in the error (it may hold the private key)', () => {
    const err = thrownBy(() => parseWgDump(`${key(0xa1)}\t${key(0xa2)}\tnope\toff`)) as Error
    expect(err.message).not.toContain(key(0xa1))
  })
})
