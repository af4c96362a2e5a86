import { chmod, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { ConfigError, type ConfigInput, checkConfigFiles, parseConfig } from '../../config/index.js'
import { toTunnelConfig, toWatchTarget } from '../../config/vpn-schema.js'
import { resolveTunnelConfig } from '../../vpn/config.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'

const source = { file: '/etc/edge-gateway/gateway.yaml', baseDir: '/etc/edge-gateway' }
const CLOUD_KEY = 'HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw='

type Section = Record<string, unknown>

function configWith(vpn: Section | undefined, cloudHost = '10.78.0.2'): ConfigInput {
  return {
    gateway: { id: 'gw-1' },
    lan: { listeners: [{ type: 'tcp', port: 1883 }] },
    devices: [{ id: 'd', username: 'd', passwordHash: '$scrypt$x' }],
    cloud: {
      host: cloudHost,
      servername: 'cloud.example.com',
      caFile: 'pki/ca.pem',
      certFile: 'pki/client.pem',
      keyFile: 'pki/client.key',
      topics: [{ local: 'devices/', cloud: 'gw/' }],
    },
    ...(vpn !== undefined && { vpn }),
  } as ConfigInput
}

const minimal: Section = {
  interfaceName: 'wg0',
  privateKeyFile: 'keys/wg.key',
  addresses: ['10.78.0.1/30'],
  peer: {
    publicKey: CLOUD_KEY,
    endpoint: '203.0.113.5:51820',
    allowedIps: ['10.78.0.2/32'],
  },
}

function parse(vpn: Section | undefined, cloudHost?: string) {
  return parseConfig(stringify(configWith(vpn, cloudHost)), source)
}

function errorOf(vpn: Section | undefined, cloudHost?: string): ConfigError {
  try {
    parse(vpn, cloudHost)
  } catch (err) {
    if (err instanceof ConfigError) return err
    throw err
  }
  throw new Error('expected a ConfigError')
}

describe('the vpn section', () => {
  it('is optional', () => {
    expect(parse(undefined).vpn).toBeUndefined()
  })

  it('fills defaults, resolves key paths against the config folder and freezes', () => {
    const config = parse({
      ...minimal,
      peer: { ...(minimal.peer as Section), presharedKeyFile: 'keys/wg.psk' },
    })
    expect(config.vpn).toEqual({
      interfaceName: 'wg0',
      manage: true,
      implementation: 'auto',
      privateKeyFile: '/etc/edge-gateway/keys/wg.key',
      addresses: ['10.78.0.1/30'],
      mtu: 1420,
      peer: {
        publicKey: CLOUD_KEY,
        presharedKeyFile: '/etc/edge-gateway/keys/wg.psk',
        endpoint: '203.0.113.5:51820',
        allowedIps: ['10.78.0.2/32'],
      },
      healthyHandshakeSeconds: 180,
      pollMs: 5000,
    })
    expect(Object.isFrozen(config.vpn?.peer.allowedIps)).toBe(true)
  })

  it('maps to the TunnelConfig of vpn/, which accepts it', () => {
    const config = parse({
      ...minimal,
      implementation: 'wireguard-go',
      listenPort: 51820,
      mtu: 1380,
      healthyHandshakeSeconds: 5,
      pollMs: 250,
      peer: { ...(minimal.peer as Section), persistentKeepalive: 25, presharedKeyFile: 'wg.psk' },
    })
    const tunnel = toTunnelConfig(config.vpn!)
    expect(tunnel).toEqual({
      interfaceName: 'wg0',
      implementation: 'wireguard-go',
      privateKeyFile: '/etc/edge-gateway/keys/wg.key',
      listenPort: 51820,
      addresses: ['10.78.0.1/30'],
      mtu: 1380,
      peer: {
        publicKey: CLOUD_KEY,
        presharedKeyFile: '/etc/edge-gateway/wg.psk',
        endpoint: '203.0.113.5:51820',
        allowedIps: ['10.78.0.2/32'],
        persistentKeepalive: 25,
      },
      healthyHandshakeSeconds: 5,
      pollMs: 250,
    })
    expect(resolveTunnelConfig(tunnel).peer.endpoint).toEqual({
      host: '203.0.113.5',
      port: 51820,
      literal: true,
    })
    expect(toWatchTarget(config.vpn!)).toEqual({
      interfaceName: 'wg0',
      peer: { publicKey: CLOUD_KEY },
      pollMs: 250,
      healthyHandshakeSeconds: 5,
    })
  })

  it('with manage: false needs no key, addresses or endpoint (the system has them)', () => {
    const config = parse({
      interfaceName: 'wg0',
      manage: false,
      peer: { publicKey: CLOUD_KEY, allowedIps: ['10.78.0.0/24'] },
    })
    expect(config.vpn).toMatchObject({ manage: false, interfaceName: 'wg0' })
    expect(() => toTunnelConfig(config.vpn!)).toThrow(
      'vpn: vpn.privateKeyFile, vpn.addresses, vpn.peer.endpoint missing for a managed tunnel',
    )
  })

  it('refuses unknown keys and bad values, one line each with the path', () => {
    const unknown = errorOf({ ...minimal, keepalive: 25 })
    expect(unknown.code).toBe('CONFIG_ERR_SCHEMA')
    expect(unknown.message).toBe('/etc/edge-gateway/gateway.yaml: vpn.keepalive: unknown key "keepalive"')
    const badKey = errorOf({ ...minimal, peer: { ...(minimal.peer as Section), publicKey: 'not-a-key' } })
    expect(badKey.code).toBe('CONFIG_ERR_SCHEMA')
    expect(badKey.message).toContain('vpn.peer.publicKey')
    expect(badKey.message).toContain('a WireGuard public key (44 characters of base64)')
    expect(errorOf({ ...minimal, interfaceName: 'a-name-far-too-long' }).message).toContain(
      'vpn.interfaceName',
    )
    expect(errorOf({ ...minimal, interfaceName: 'all' }).message).toBe(
      '/etc/edge-gateway/gateway.yaml: vpn.interfaceName: a keyword of `wg show`; choose another (wg0), got "all" (string)',
    )
    expect(errorOf({ ...minimal, implementation: 'userspace' }).message).toContain('vpn.implementation')
    expect(errorOf({ ...minimal, mtu: 1000 }).message).toBe(
      '/etc/edge-gateway/gateway.yaml: vpn.mtu: Too small: expected number to be >=1280, got 1000 (number)',
    )
    for (const message of [
      errorOf({ ...minimal, pollMs: 10 }).message,
      errorOf({ ...minimal, healthyHandshakeSeconds: 0 }).message,
    ]) {
      expect(message.split('\n')).toHaveLength(1)
    }
  })

  it('refuses a managed tunnel without the key file, addresses or endpoint', () => {
    const { privateKeyFile: _k, addresses: _a, ...rest } = minimal
    const err = errorOf({ ...rest, peer: { publicKey: CLOUD_KEY, allowedIps: ['10.78.0.2/32'] } })
    expect(err.code).toBe('CONFIG_ERR_CROSS_FIELD')
    expect(err.message).toBe(
      '/etc/edge-gateway/gateway.yaml: vpn.privateKeyFile: required when vpn.manage is true (the gateway brings the tunnel up itself); vpn.addresses: required when vpn.manage is true (the gateway brings the tunnel up itself); vpn.peer.endpoint: required when vpn.manage is true (the gateway brings the tunnel up itself)',
    )
  })

  it('refuses a cloud.host outside the tunnel (the check vpn/ makes before bringing it up)', () => {
    const err = errorOf(minimal, '10.78.0.3')
    expect(err.code).toBe('CONFIG_ERR_CROSS_FIELD')
    expect(err.message).toBe(
      '/etc/edge-gateway/gateway.yaml: cloud.host: The cloud broker address 10.78.0.3 is not inside vpn.peer.allowedIps (10.78.0.2/32): it would be routed outside the tunnel; add its tunnel prefix to allowedIps',
    )
    // Also when the system manages the tunnel: the bridge would still leak.
    expect(
      errorOf(
        { interfaceName: 'wg0', manage: false, peer: { publicKey: CLOUD_KEY, allowedIps: ['10.78.0.0/24'] } },
        '192.0.2.7',
      ).message,
    ).toContain(
      'cloud.host: The cloud broker address 192.0.2.7 is not inside vpn.peer.allowedIps (10.78.0.0/24)',
    )
  })

  it('leaves a cloud.host name to the start-up check, where it is resolved', () => {
    expect(parse(minimal, 'cloud.example.com').cloud.host).toBe('cloud.example.com')
  })

  it('refuses an endpoint inside the tunnel and malformed prefixes, with the messages of vpn/', () => {
    const inside = errorOf({
      ...minimal,
      peer: { ...(minimal.peer as Section), endpoint: '10.78.0.2:51820' },
    })
    expect(inside.message).toBe(
      "/etc/edge-gateway/gateway.yaml: vpn: The peer endpoint 10.78.0.2 is inside vpn.peer.allowedIps (10.78.0.2/32): the tunnel's own packets would be routed into the tunnel; narrow allowedIps to the cloud side's tunnel addresses",
    )
    const prefix = errorOf({ ...minimal, addresses: ['10.78.0.1/33'] })
    expect(prefix.message).toBe(
      '/etc/edge-gateway/gateway.yaml: vpn: Expected the interface address to be an IP prefix such as 10.78.0.1/30 or fd78::1/64, got "10.78.0.1/33"',
    )
    const allowed = errorOf({
      manage: false,
      interfaceName: 'wg0',
      peer: { publicKey: CLOUD_KEY, allowedIps: ['ten'] },
    })
    expect(allowed.message).toContain('Expected the allowed IP to be an IP prefix')
  })
})

describe('vpn key files', () => {
  let dir: string
  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-vpn-files-')
    for (const name of ['ca.pem', 'client.pem']) await writeFile(join(dir, name), 'x\n')
    await writeFile(join(dir, 'client.key'), 'x\n', { mode: 0o600 })
  })
  afterAll(async () => {
    await removeDir(dir)
  })

  it('must be 0600 or tighter, like every other secret', async () => {
    await writeFile(join(dir, 'wg.key'), 'x\n', { mode: 0o600 })
    await writeFile(join(dir, 'wg.psk'), 'x\n')
    await chmod(join(dir, 'wg.psk'), 0o644)
    const input = configWith({
      ...minimal,
      privateKeyFile: 'wg.key',
      peer: { ...(minimal.peer as Section), presharedKeyFile: 'wg.psk' },
    }) as unknown as Record<string, Section>
    input.cloud = { ...input.cloud, caFile: 'ca.pem', certFile: 'client.pem', keyFile: 'client.key' }
    const file = join(dir, 'gateway.yaml')
    const config = parseConfig(stringify(input), { file, baseDir: dir })
    const err = await checkConfigFiles(config, file).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toMatchObject({
      code: 'CONFIG_ERR_SECRET_FILE',
      message: `${file}: vpn.peer.presharedKeyFile: ${join(dir, 'wg.psk')} has mode 0644; a key file must be 0600 or tighter (chmod 600 ${join(dir, 'wg.psk')})`,
    })
  })
})
