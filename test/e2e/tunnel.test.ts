/**
 * WireGuard end to end, through a real tunnel: two network namespaces (gateway and cloud) joined
 * by a veth pair, wireguard-go on both ends configured by `vpn/`. Addresses exist only inside the
 * namespaces: 10.77.0.0/30 on the veth, 10.78.0.0/30 inside the tunnel.
 */
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { pathToFileURL } from 'node:url'
import type { Subscription } from 'rxjs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TunnelConfig } from '../../vpn/config.js'
import { readTunnelSample, watchTunnel } from '../../vpn/health.js'
import type { TunnelSample, TunnelState } from '../../vpn/health-state.js'
import { createKeys } from '../../vpn/keys.js'
import { bringUpCloudPeer, mirrorForCloud } from '../../vpn/peer.js'
import { bringUp, type Tunnel } from '../../vpn/tunnel.js'
import { assertBuilt } from '../cli/run-cli.js'
import { rejectionOf } from '../helpers/catch.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { startCapture } from './capture.js'
import { echoOnce, startEchoServer } from './echo.js'
import { NetnsLab, requireLab, type VethPair } from './netns.js'

const GATEWAY_WG_PORT = 51820
const CLOUD_WG_PORT = 51821
const GATEWAY_TUNNEL_IP = '10.78.0.1'
const CLOUD_TUNNEL_IP = '10.78.0.2'
const ECHO_PORT = 7000
const HEALTH_WINDOW_S = 3

const lab = new NetnsLab()
let dir: string | undefined
let gatewayNs: string
let cloudNs: string
let veth: VethPair
let gatewayConfig: TunnelConfig
let cloudPublicKey: string
let gateway: Tunnel | undefined
let cloud: Tunnel | undefined

/** Polls `probe` every 100 ms until it returns a value that is not undefined; fails after `timeoutMs`. */
async function eventually<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(100)
  }
}

const gatewaySample = (): Promise<TunnelSample> =>
  readTunnelSample(gatewayConfig.interfaceName, cloudPublicKey, { netns: gatewayNs })

beforeAll(async () => {
  await requireLab(['ip', 'wg', 'wireguard-go', 'tcpdump'])
  dir = await makeTempDir('vpn-e2e')
  gatewayNs = await lab.addNamespace('gw')
  cloudNs = await lab.addNamespace('cl')
  veth = await lab.addVethPair(
    { ns: gatewayNs, address: '10.77.0.1/30' },
    { ns: cloudNs, address: '10.77.0.2/30' },
    { staticNeighbours: true },
  )
  const presharedKeyFile = join(dir, 'wg.psk')
  const gatewayKeys = await createKeys({ privateKeyFile: join(dir, 'gateway.key'), presharedKeyFile })
  const cloudKeys = await createKeys({ privateKeyFile: join(dir, 'cloud.key') })
  cloudPublicKey = cloudKeys.publicKey
  gatewayConfig = {
    interfaceName: lab.name('wgg'),
    implementation: 'wireguard-go',
    privateKeyFile: join(dir, 'gateway.key'),
    listenPort: GATEWAY_WG_PORT,
    addresses: [`${GATEWAY_TUNNEL_IP}/30`],
    mtu: 1420,
    peer: {
      publicKey: cloudKeys.publicKey,
      presharedKeyFile,
      endpoint: `10.77.0.2:${CLOUD_WG_PORT}`,
      allowedIps: [`${CLOUD_TUNNEL_IP}/32`],
      persistentKeepalive: 1,
    },
    healthyHandshakeSeconds: HEALTH_WINDOW_S,
    pollMs: 250,
  }
  const cloudConfig = mirrorForCloud(gatewayConfig, {
    interfaceName: lab.name('wgc'),
    privateKeyFile: join(dir, 'cloud.key'),
    gatewayPublicKey: gatewayKeys.publicKey,
    addresses: [`${CLOUD_TUNNEL_IP}/30`],
    listenPort: CLOUD_WG_PORT,
    implementation: 'wireguard-go',
    // Keepalives from the cloud too, so the gateway receives something every second and a 3 s
    // health window means something (WireGuard itself only re-handshakes every 2 minutes).
    persistentKeepalive: 1,
  })
  // The cloud first, so the gateway's first handshake initiation finds it listening.
  cloud = await bringUpCloudPeer(cloudConfig, { netns: cloudNs })
  gateway = await bringUp(gatewayConfig, { netns: gatewayNs, cloudAddress: CLOUD_TUNNEL_IP })
})

afterAll(async () => {
  const errors: unknown[] = []
  for (const tunnel of [gateway, cloud]) await tunnel?.down().catch((err: unknown) => errors.push(err))
  await lab.cleanup().catch((err: unknown) => errors.push(err))
  if (dir !== undefined) await removeDir(dir)
  if (errors.length > 0) throw new AggregateError(errors, 'tunnel e2e cleanup failed')
})

/**
 * readTunnelSample run as a user without CAP_NET_ADMIN (nobody, every capability dropped), as the
 * gateway's service would without the unit's drop-in: wg is refused, and the sample says so.
 */
async function unprivilegedSample(ns: string, interfaceName: string): Promise<TunnelSample> {
  assertBuilt()
  const health = pathToFileURL(join(process.cwd(), 'dist', 'vpn', 'health.js')).href
  const script = `import(${JSON.stringify(health)}).then(async (m) => console.log(JSON.stringify(await m.readTunnelSample(${JSON.stringify(interfaceName)}, undefined))))`
  const { stdout } = await lab.exec(ns, 'setpriv', [
    '--reuid=65534',
    '--regid=65534',
    '--clear-groups',
    '--inh-caps=-all',
    '--bounding-set=-all',
    process.execPath,
    '-e',
    script,
  ])
  return JSON.parse(stdout) as TunnelSample
}

describe('WireGuard tunnel between two namespaces', () => {
  it('brings both ends up with wireguard-go and completes a handshake', async () => {
    expect(gateway).toMatchObject({ implementation: 'wireguard-go', netns: gatewayNs })
    expect(gateway?.pid).toBeGreaterThan(1)
    expect(cloud?.pid).toBeGreaterThan(1)
    const sample = await eventually('a handshake', 15_000, async () => {
      const s = await gatewaySample()
      return s.peer?.latestHandshake == null ? undefined : s
    })
    expect(sample).toMatchObject({ present: true, linkUp: true, error: null })
    expect(sample.peer).toMatchObject({
      publicKey: cloudPublicKey,
      hasPresharedKey: true,
      endpoint: `10.77.0.2:${CLOUD_WG_PORT}`,
      allowedIps: [`${CLOUD_TUNNEL_IP}/32`],
      persistentKeepalive: 1,
    })
    // Without the privilege to read it, the tunnel is not reported missing: the refusal is named.
    const refused = await unprivilegedSample(gatewayNs, gatewayConfig.interfaceName)
    expect(refused).toMatchObject({ present: false, error: { code: 'VPN_ERR_NO_PRIVILEGE' } })
    expect(refused.error?.message).toContain('reading a WireGuard interface needs CAP_NET_ADMIN')
    // The cloud learned the gateway's address from the handshake.
    const cloudSide = await readTunnelSample(cloud!.interfaceName, undefined, { netns: cloudNs })
    expect(cloudSide.peer?.endpoint).toBe(`10.77.0.1:${GATEWAY_WG_PORT}`)
    const route = await lab.exec(gatewayNs, 'ip', ['route', 'get', CLOUD_TUNNEL_IP])
    expect(route.stdout).toContain(`dev ${gatewayConfig.interfaceName}`)
  })

  it('carries TCP between the tunnel addresses', async () => {
    const server = await startEchoServer(lab, cloudNs, CLOUD_TUNNEL_IP, ECHO_PORT)
    try {
      const before = await gatewaySample()
      expect(await echoOnce(lab, gatewayNs, CLOUD_TUNNEL_IP, ECHO_PORT, 'hello through the tunnel')).toBe(
        'hello through the tunnel',
      )
      const after = await gatewaySample()
      expect(after.peer!.txBytes).toBeGreaterThan(before.peer!.txBytes)
      expect(after.peer!.rxBytes).toBeGreaterThan(before.peer!.rxBytes)
    } finally {
      await server.stop()
    }
  })

  it('puts nothing but WireGuard UDP on the veth', async () => {
    const server = await startEchoServer(lab, cloudNs, CLOUD_TUNNEL_IP, ECHO_PORT)
    const leaks = await startCapture(lab, gatewayNs, veth.a.name, `not udp port ${CLOUD_WG_PORT}`)
    // The control: the same capture does see the tunnel's packets.
    const tunnelPackets = await startCapture(lab, gatewayNs, veth.a.name, `udp port ${CLOUD_WG_PORT}`)
    try {
      for (let i = 0; i < 10; i++) {
        expect(await echoOnce(lab, gatewayNs, CLOUD_TUNNEL_IP, ECHO_PORT, `message ${i}`)).toBe(
          `message ${i}`,
        )
      }
      await sleep(1500) // and some keepalives
    } finally {
      await server.stop()
    }
    const leaked = await leaks.stop()
    const carried = await tunnelPackets.stop()
    expect(leaked.packets).toEqual([])
    expect(leaked.captured).toBe(0)
    expect(carried.captured).toBeGreaterThan(20)
    expect(carried.packets.every((p) => p.includes(`.${CLOUD_WG_PORT}`) && p.includes('UDP'))).toBe(true)
  })

  it('reports the tunnel unhealthy when the veth is cut for longer than the window, and healthy when it returns', async () => {
    const states: TunnelState[] = []
    let subscription: Subscription | undefined
    const latest = () => states.at(-1)
    try {
      subscription = watchTunnel(gatewayConfig, { netns: gatewayNs }).subscribe((s) => states.push(s))
      await eventually('a healthy tunnel', 10_000, async () => (latest()?.healthy ? true : undefined))

      // Fresh traffic from the peer just before the cut, so the window starts at the cut even when a
      // loaded machine delayed the keepalives (seen with two test runs side by side).
      const server = await startEchoServer(lab, cloudNs, CLOUD_TUNNEL_IP, ECHO_PORT)
      try {
        expect(await echoOnce(lab, gatewayNs, CLOUD_TUNNEL_IP, ECHO_PORT, 'before the cut')).toBe(
          'before the cut',
        )
      } finally {
        await server.stop()
      }
      const cutAt = Date.now()
      await veth.setUp('a', false)
      const unhealthy = await eventually('the tunnel to turn unhealthy', 15_000, async () => {
        const s = latest()
        return s !== undefined && s.checkedAt > cutAt && !s.healthy ? s : undefined
      })
      const detectedAfter = unhealthy.checkedAt - cutAt
      // Not at once (it is the window that expires) and not long after it.
      expect(detectedAfter).toBeGreaterThanOrEqual((HEALTH_WINDOW_S - 1) * 1000 - 500)
      expect(detectedAfter).toBeLessThan((HEALTH_WINDOW_S + 3) * 1000)
      expect(unhealthy).toMatchObject({
        interfaceName: gatewayConfig.interfaceName,
        up: true,
        healthy: false,
      })
      expect(unhealthy.reason).toMatch(/^no handshake or traffic from the peer for [\d.]+ s \(window 3 s\)$/)

      // Keep it cut well past the window, then restore it.
      await sleep(Math.max(0, cutAt + (HEALTH_WINDOW_S + 2) * 1000 - Date.now()))
      expect(latest()?.healthy).toBe(false)
      const restoredAt = Date.now()
      await veth.setUp('a', true)
      const healthy = await eventually('the tunnel to turn healthy again', 15_000, async () => {
        const s = latest()
        return s !== undefined && s.checkedAt > restoredAt && s.healthy ? s : undefined
      })
      expect(healthy).toMatchObject({
        up: true,
        healthy: true,
        reason: null,
        endpoint: `10.77.0.2:${CLOUD_WG_PORT}`,
      })
    } finally {
      subscription?.unsubscribe()
    }
    // Unsubscribing stopped the polling.
    const count = states.length
    await sleep(1000)
    expect(states.length).toBe(count)

    const server = await startEchoServer(lab, cloudNs, CLOUD_TUNNEL_IP, ECHO_PORT)
    try {
      expect(await echoOnce(lab, gatewayNs, CLOUD_TUNNEL_IP, ECHO_PORT, 'after the cut')).toBe(
        'after the cut',
      )
    } finally {
      await server.stop()
    }
  })

  it('refuses a second tunnel whose route to the cloud is taken, and removes what it made', async () => {
    const name = lab.name('wgx')
    const err = await rejectionOf(
      bringUp(
        { ...gatewayConfig, interfaceName: name, listenPort: GATEWAY_WG_PORT + 10 },
        {
          netns: gatewayNs,
          cloudAddress: CLOUD_TUNNEL_IP,
        },
      ),
    )
    expect(err).toMatchObject({ code: 'VPN_ERR_ROUTE_CONFLICT' })
    expect((err as Error).message).toBe(
      `A route for ${CLOUD_TUNNEL_IP}/32 already exists, so it cannot be routed through ${name}; remove that route or narrow vpn.peer.allowedIps`,
    )
    const links = await lab.exec(gatewayNs, 'ip', ['-o', 'link', 'show'])
    expect(links.stdout).not.toContain(name)
    // The wireguard-go it started is gone: only the gateway's own is left in the namespace.
    expect(await lab.pids(gatewayNs)).toEqual([gateway?.pid])
  })

  it('refuses a cloud address outside the tunnel before creating anything', async () => {
    const name = lab.name('wgy')
    const err = await rejectionOf(
      bringUp({ ...gatewayConfig, interfaceName: name }, { netns: gatewayNs, cloudAddress: '10.77.0.2' }),
    )
    expect(err).toMatchObject({ code: 'VPN_ERR_CLOUD_OUTSIDE_TUNNEL' })
    expect((await lab.exec(gatewayNs, 'ip', ['-o', 'link', 'show'])).stdout).not.toContain(name)
  })
})
