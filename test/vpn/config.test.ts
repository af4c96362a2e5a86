import { describe, expect, it } from 'vitest'
import { checkCloudInsideTunnel, resolveTunnelConfig, type TunnelConfig } from '../../vpn/config.js'
import { VpnError } from '../../vpn/errors.js'
import { thrownBy } from '../helpers/catch.js'

const cloudKey = Buffer.alloc(32, 0xb2).toString('base64')

function config(
  overrides: Partial<TunnelConfig> = {},
  peer: Partial<TunnelConfig['peer']> = {},
): TunnelConfig {
  return {
    interfaceName: 'wg0',
    privateKeyFile: '/etc/edge-gateway/wg.key',
    addresses: ['10.78.0.1/30'],
    ...overrides,
    peer: { publicKey: cloudKey, endpoint: '203.0.113.5:51820', allowedIps: ['10.78.0.2/32'], ...peer },
  }
}

describe('resolveTunnelConfig', () => {
  it('fills the defaults and freezes the result', () => {
    const resolved = resolveTunnelConfig(config())
    expect(resolved).toMatchObject({
      interfaceName: 'wg0',
      implementation: 'auto',
      mtu: 1420,
      listenPort: undefined,
      healthyHandshakeSeconds: 180,
      pollMs: 5000,
      peer: { endpoint: { host: '203.0.113.5', port: 51820, literal: true }, persistentKeepalive: undefined },
    })
    expect(resolved.addresses.map((a) => [a.family, a.prefix, a.text])).toEqual([[4, 30, '10.78.0.1/30']])
    expect(Object.isFrozen(resolved)).toBe(true)
    expect(Object.isFrozen(resolved.peer)).toBe(true)
    expect(Object.isFrozen(resolved.peer.allowedIps)).toBe(true)
  })

  it.each<[string, TunnelConfig, string]>([
    [
      'a long interface name',
      config({ interfaceName: 'wg-much-too-long' }),
      'Expected an interface name of 1 to 15 letters, digits or _=+.-, got "wg-much-too-long"',
    ],
    ['a slash in the interface name', config({ interfaceName: 'wg/0' }), 'got "wg/0"'],
    [
      'a keyword of wg show as the interface name',
      config({ interfaceName: 'all' }),
      'is a keyword of `wg show`',
    ],
    ['the other keyword', config({ interfaceName: 'interfaces' }), 'is a keyword of `wg show`'],
    [
      'an unknown implementation',
      config({ implementation: 'boringtun' as never }),
      'Expected vpn.implementation to be auto, kernel or wireguard-go, got "boringtun"',
    ],
    [
      'a bad public key',
      config({}, { publicKey: 'abc' }),
      'Expected vpn.peer.publicKey to be a WireGuard public key (44 characters of base64), got "abc"',
    ],
    [
      'an endpoint without port',
      config({}, { endpoint: '203.0.113.5' }),
      'Expected the peer endpoint to be host:port',
    ],
    ['an endpoint with port 0', config({}, { endpoint: '203.0.113.5:0' }), 'got "203.0.113.5:0"'],
    [
      'no allowed IPs',
      config({}, { allowedIps: [] }),
      'Expected vpn.peer.allowedIps to be a non-empty list of IP prefixes, got []',
    ],
    [
      'a bad allowed IP',
      config({}, { allowedIps: ['10.78.0.2/33'] }),
      'Expected the allowed IP to be an IP prefix such as 10.78.0.1/30 or fd78::1/64, got "10.78.0.2/33"',
    ],
    [
      'a bad address',
      config({ addresses: ['10.78.0.300/30'] }),
      'Expected the interface address to be an IP prefix',
    ],
    [
      'an MTU too small',
      config({ mtu: 576 }),
      'Expected vpn.mtu to be an integer from 1280 to 9000, got 576',
    ],
    [
      'a listen port of 0',
      config({ listenPort: 0 }),
      'Expected vpn.listenPort to be an integer from 1 to 65535, got 0',
    ],
    [
      'a fractional keepalive',
      config({}, { persistentKeepalive: 2.5 }),
      'Expected vpn.peer.persistentKeepalive to be an integer from 1 to 65535, got 2.5',
    ],
    [
      'a poll interval of 10 ms',
      config({ pollMs: 10 }),
      'Expected vpn.pollMs to be an integer from 100 to 3600000, got 10',
    ],
    [
      'a health window of 0',
      config({ healthyHandshakeSeconds: 0 }),
      'Expected vpn.healthyHandshakeSeconds to be an integer from 1 to 86400, got 0',
    ],
    [
      'an empty key file path',
      config({ privateKeyFile: '' }),
      'Expected vpn.privateKeyFile to be a file path, got ""',
    ],
  ])('refuses %s', (_what, bad, message) => {
    const err = thrownBy(() => resolveTunnelConfig(bad))
    expect(err).toBeInstanceOf(VpnError)
    expect((err as VpnError).code).toBe('VPN_ERR_BAD_CONFIG')
    expect((err as VpnError).message).toContain(message)
  })

  it('refuses an endpoint inside the allowed IPs (the tunnel would route its own packets into itself)', () => {
    const err = thrownBy(() => resolveTunnelConfig(config({}, { allowedIps: ['0.0.0.0/0'] })))
    expect(err).toMatchObject({
      code: 'VPN_ERR_BAD_CONFIG',
      message:
        "The peer endpoint 203.0.113.5 is inside vpn.peer.allowedIps (0.0.0.0/0): the tunnel's own packets would be routed into the tunnel; narrow allowedIps to the cloud side's tunnel addresses",
    })
  })

  it('refuses an IPv4-mapped IPv6 endpoint inside the allowed IPs as well', () => {
    const err = thrownBy(() =>
      resolveTunnelConfig(config({}, { endpoint: '[::ffff:10.77.9.2]:51899', allowedIps: ['10.77.9.2/32'] })),
    )
    expect(err).toMatchObject({
      code: 'VPN_ERR_BAD_CONFIG',
      message: expect.stringContaining('is inside vpn.peer.allowedIps'),
    })
  })

  it('accepts a host name endpoint (wg resolves it) and IPv6 prefixes', () => {
    const resolved = resolveTunnelConfig(
      config({ addresses: ['fd78::1/64'] }, { endpoint: 'vpn.example.com:51820', allowedIps: ['fd78::/64'] }),
    )
    expect(resolved.peer.endpoint).toEqual({ host: 'vpn.example.com', port: 51820, literal: false })
  })
})

describe('checkCloudInsideTunnel', () => {
  it('accepts a cloud address inside the allowed IPs', () => {
    expect(() => checkCloudInsideTunnel(config(), '10.78.0.2')).not.toThrow()
    expect(() =>
      checkCloudInsideTunnel(config({}, { allowedIps: ['10.78.0.0/24'] }), '10.78.0.77'),
    ).not.toThrow()
    expect(() =>
      checkCloudInsideTunnel(config({ addresses: ['fd78::1/64'] }, { allowedIps: ['fd78::/64'] }), 'fd78::2'),
    ).not.toThrow()
  })

  it('accepts an already resolved config', () => {
    expect(() => checkCloudInsideTunnel(resolveTunnelConfig(config()), '10.78.0.2')).not.toThrow()
  })

  it('refuses a cloud address the tunnel would not carry', () => {
    const err = thrownBy(() => checkCloudInsideTunnel(config(), '203.0.113.9'))
    expect(err).toBeInstanceOf(VpnError)
    expect(err).toMatchObject({
      code: 'VPN_ERR_CLOUD_OUTSIDE_TUNNEL',
      message:
        'The cloud broker address 203.0.113.9 is not inside vpn.peer.allowedIps (10.78.0.2/32): it would be routed outside the tunnel; add its tunnel prefix to allowedIps',
    })
  })

  it('refuses the neighbour of the allowed host and an address of the other family', () => {
    expect(thrownBy(() => checkCloudInsideTunnel(config(), '10.78.0.3'))).toMatchObject({
      code: 'VPN_ERR_CLOUD_OUTSIDE_TUNNEL',
    })
    expect(thrownBy(() => checkCloudInsideTunnel(config(), '::ffff:10.78.0.3'))).toMatchObject({
      code: 'VPN_ERR_CLOUD_OUTSIDE_TUNNEL',
    })
  })

  it('refuses a host name: it must be resolved first', () => {
    expect(thrownBy(() => checkCloudInsideTunnel(config(), 'broker.example.com'))).toMatchObject({
      code: 'VPN_ERR_BAD_CONFIG',
      message:
        'Expected the cloud broker address to be an IP address inside the tunnel, got "broker.example.com"; resolve the host name first',
    })
  })
})
