import { describe, expect, it } from 'vitest'
import { resolveTunnelConfig } from '../../vpn/config.js'
import { VpnError } from '../../vpn/errors.js'
import { interfaceSettingsOf, renderInterfaceConfig } from '../../vpn/render.js'
import { SecretKey } from '../../vpn/secret.js'
import { thrownBy } from '../helpers/catch.js'

const key = (byte: number) => Buffer.alloc(32, byte).toString('base64')
const privateKey = new SecretKey(key(0xa1))
const presharedKey = new SecretKey(key(0xc1))

describe('renderInterfaceConfig', () => {
  it('renders every field in the wg setconf format', () => {
    const text = renderInterfaceConfig({
      privateKey,
      listenPort: 51820,
      peers: [
        {
          publicKey: key(0xb2),
          presharedKey,
          endpoint: '10.77.0.2:51821',
          allowedIps: ['10.78.0.2/32', 'fd78::2/128'],
          persistentKeepalive: 25,
        },
      ],
    })
    expect(text).toBe(
      [
        '[Interface]',
        `PrivateKey = ${key(0xa1)}`,
        'ListenPort = 51820',
        '',
        '[Peer]',
        `PublicKey = ${key(0xb2)}`,
        `PresharedKey = ${key(0xc1)}`,
        'Endpoint = 10.77.0.2:51821',
        'AllowedIPs = 10.78.0.2/32, fd78::2/128',
        'PersistentKeepalive = 25',
        '',
      ].join('\n'),
    )
  })

  it('leaves out what is not set, and brackets an IPv6 endpoint', () => {
    expect(
      renderInterfaceConfig({
        privateKey,
        peers: [{ publicKey: key(0xb2), endpoint: '[2001:db8::5]:51820', allowedIps: ['10.78.0.0/30'] }],
      }),
    ).toBe(
      `[Interface]\nPrivateKey = ${key(0xa1)}\n\n[Peer]\nPublicKey = ${key(0xb2)}\nEndpoint = [2001:db8::5]:51820\nAllowedIPs = 10.78.0.0/30\n`,
    )
  })

  it('renders a resolved tunnel config', () => {
    const config = resolveTunnelConfig({
      interfaceName: 'wg0',
      privateKeyFile: '/etc/edge-gateway/wg.key',
      addresses: ['10.78.0.1/30'],
      peer: { publicKey: key(0xb2), endpoint: 'vpn.example.com:51820', allowedIps: ['10.78.0.2/32'] },
    })
    expect(renderInterfaceConfig(interfaceSettingsOf(config, { privateKey }))).toBe(
      `[Interface]\nPrivateKey = ${key(0xa1)}\n\n[Peer]\nPublicKey = ${key(0xb2)}\nEndpoint = vpn.example.com:51820\nAllowedIPs = 10.78.0.2/32\n`,
    )
  })

  it.each([
    [
      { publicKey: `${key(0xb2)}\nPrivateKey = x`, allowedIps: ['10.0.0.1/32'] },
      'Expected the peer public key to be a WireGuard key',
    ],
    [
      {
        publicKey: key(0xb2),
        endpoint: '1.2.3.4:51820\nAllowedIPs = 0.0.0.0/0',
        allowedIps: ['10.0.0.1/32'],
      },
      'Expected the peer endpoint to be host:port',
    ],
    [
      { publicKey: key(0xb2), allowedIps: ['10.0.0.1/32\n[Peer]'] },
      'Expected the allowed IP to be an IP prefix',
    ],
    [{ publicKey: key(0xb2), allowedIps: [] }, 'Expected at least one allowed IP for the peer, got none'],
    [
      { publicKey: key(0xb2), allowedIps: ['10.0.0.1/32'], persistentKeepalive: 1.5 },
      'Expected PersistentKeepalive to be an integer from 1 to 65535, got 1.5',
    ],
  ])('refuses a value that would add or break a line: %j', (peer, message) => {
    const err = thrownBy(() => renderInterfaceConfig({ privateKey, peers: [peer] }))
    expect(err).toBeInstanceOf(VpnError)
    expect((err as VpnError).code).toBe('VPN_ERR_BAD_CONFIG')
    expect((err as VpnError).message).toContain(message)
  })

  it('refuses a listen port out of range', () => {
    expect(thrownBy(() => renderInterfaceConfig({ privateKey, listenPort: 70000, peers: [] }))).toMatchObject(
      {
        code: 'VPN_ERR_BAD_CONFIG',
        message: 'Expected ListenPort to be an integer from 1 to 65535, got 70000',
      },
    )
  })
})
