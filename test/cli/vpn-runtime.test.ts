import { Writable } from 'node:stream'
import { firstValueFrom } from 'rxjs'
import { describe, expect, it } from 'vitest'
import { cloudLinkConfig, startVpn } from '../../cli/vpn-runtime.js'
import type { GatewayConfig } from '../../config/index.js'
import { createLogger } from '../../core/logger.js'
import { Metrics } from '../../core/metrics.js'

const CLOUD_KEY = 'HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw='

/** A logger whose JSON lines land in `lines`; `next(pattern)` resolves with the first matching one. */
function capturedLogger() {
  const lines: Array<Record<string, unknown>> = []
  const waiters: Array<() => void> = []
  const destination = new Writable({
    write(chunk, _encoding, callback) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line))
      for (const wake of waiters.splice(0)) wake()
      callback()
    },
  })
  const next = async (pattern: RegExp): Promise<Record<string, unknown>> => {
    for (;;) {
      const found = lines.find((l) => pattern.test(String(l.msg)))
      if (found !== undefined) return found
      await new Promise<void>((resolve) => waiters.push(resolve))
    }
  }
  return { logger: createLogger({ level: 'info', destination }), lines, next }
}

function configWith(vpn: unknown): Readonly<GatewayConfig> {
  return { cloud: { host: '10.78.0.2' }, vpn } as unknown as Readonly<GatewayConfig>
}

describe('startVpn', () => {
  it('without a vpn section logs one line that the VPN is off and never gates the bridge', async () => {
    const { logger, lines } = capturedLogger()
    const runtime = await startVpn(configWith(undefined), { logger, metrics: new Metrics() })
    expect(runtime.mode).toBe('off')
    expect(runtime.gate$).toBeUndefined()
    expect(runtime.state).toBeNull()
    await runtime.close()
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatchObject({
      level: 30,
      event: 'vpn_off',
      msg: "vpn off (no vpn section): the bridge connects to 10.78.0.2 over the host's own routes",
    })
  })

  it('watching a system-managed tunnel that is missing: unhealthy, logged once, the gate stays closed', async () => {
    const { logger, lines, next } = capturedLogger()
    const metrics = new Metrics()
    const runtime = await startVpn(
      configWith({
        interfaceName: 'wgabsent7',
        manage: false,
        healthyHandshakeSeconds: 5,
        pollMs: 100,
        peer: { publicKey: CLOUD_KEY, allowedIps: ['10.78.0.2/32'] },
      }),
      { logger, metrics },
    )
    try {
      expect(runtime.mode).toBe('system')
      const line = await next(/unhealthy/)
      expect(line).toMatchObject({
        level: 40,
        event: 'tunnel_health',
        interface: 'wgabsent7',
        up: false,
        healthy: false,
        handshakeAgeMs: null,
        msg: 'vpn tunnel wgabsent7 unhealthy (handshake never): interface wgabsent7 does not exist; the bridge holds messages in the queue',
      })
      expect(await firstValueFrom(runtime.gate$!)).toBe(false)
      expect(runtime.state).toMatchObject({ interfaceName: 'wgabsent7', up: false, healthy: false })
      expect(metrics.snapshot()).toMatchObject({
        vpn_tunnel_up: 0,
        vpn_tunnel_healthy: 0,
        vpn_handshake_age_seconds: -1,
      })
      // More polls, no more lines: only transitions are logged.
      const checked = runtime.state!.checkedAt
      while (runtime.state!.checkedAt === checked) await new Promise((r) => setTimeout(r, 50))
      expect(lines.filter((l) => l.event === 'tunnel_health')).toHaveLength(1)
      expect(lines[0]?.msg).toBe(
        'vpn tunnel wgabsent7 is managed by the system; the gateway only watches its health',
      )
    } finally {
      await runtime.close()
    }
  })
})

describe('cloudLinkConfig', () => {
  it('with a tunnel, the link connects to the address checked at start, and the name stays the TLS server name', async () => {
    const { logger } = capturedLogger()
    const config = {
      cloud: { host: 'localhost' },
      vpn: {
        interfaceName: 'wgabsent8',
        manage: false,
        healthyHandshakeSeconds: 5,
        pollMs: 100,
        peer: { publicKey: CLOUD_KEY, allowedIps: ['127.0.0.1/32', '::1/128'] },
      },
    } as unknown as Readonly<GatewayConfig>
    const runtime = await startVpn(config, { logger, metrics: new Metrics() })
    try {
      expect(['127.0.0.1', '::1']).toContain(runtime.cloudAddress)
      expect(cloudLinkConfig({ host: 'localhost', port: 8883 }, runtime.cloudAddress)).toEqual({
        host: runtime.cloudAddress,
        port: 8883,
        servername: 'localhost',
      })
    } finally {
      await runtime.close()
    }
    // A servername given is kept; an IP host, or no tunnel, is left as it is.
    expect(cloudLinkConfig({ host: 'broker.lan', servername: 'cloud.example' }, '10.78.0.2')).toEqual({
      host: '10.78.0.2',
      servername: 'cloud.example',
    })
    expect(cloudLinkConfig({ host: '10.78.0.2' }, '10.78.0.2')).toEqual({ host: '10.78.0.2' })
    expect(cloudLinkConfig({ host: 'broker.lan' }, undefined)).toEqual({ host: 'broker.lan' })
  })
})
