import { describe, expect, it } from 'vitest'
import type { WgPeerDump } from '../../vpn/dump.js'
import { evaluateHealth, type HealthMemory, type TunnelSample } from '../../vpn/health-state.js'

const T0 = 1_795_420_630_000 // a handshake time, in ms
const WINDOW = 180_000

function peer(overrides: Partial<WgPeerDump> = {}): WgPeerDump {
  return {
    publicKey: Buffer.alloc(32, 0xb2).toString('base64'),
    hasPresharedKey: true,
    endpoint: '10.77.0.2:51821',
    allowedIps: ['10.78.0.2/32'],
    latestHandshake: T0 / 1000,
    rxBytes: 184,
    txBytes: 1404,
    persistentKeepalive: 25,
    ...overrides,
  }
}

const sample = (p: WgPeerDump | null, more: Partial<TunnelSample> = {}): TunnelSample => ({
  present: true,
  linkUp: true,
  peer: p,
  error: null,
  ...more,
})

describe('evaluateHealth', () => {
  it('is healthy with a handshake inside the window, and reports the peer state', () => {
    const { state, memory } = evaluateHealth('wg0', sample(peer()), undefined, T0 + 5_000, WINDOW)
    expect(state).toEqual({
      interfaceName: 'wg0',
      up: true,
      missing: false,
      pollFailed: false,
      inPlace: true,
      handshakeAgeMs: 5_000,
      lastReceiveAgeMs: null,
      rxBytes: 184,
      txBytes: 1404,
      endpoint: '10.77.0.2:51821',
      healthy: true,
      reason: null,
      checkedAt: T0 + 5_000,
    })
    expect(memory).toEqual({
      rxBytes: 184,
      lastReceiveAt: null,
      handshake: T0 / 1000,
      handshakeAt: T0,
      polledAt: T0 + 5_000,
    })
  })

  it('is unhealthy once the handshake is older than the window and nothing was received', () => {
    const { state } = evaluateHealth('wg0', sample(peer()), undefined, T0 + 181_000, WINDOW)
    expect(state).toMatchObject({
      up: true,
      healthy: false,
      handshakeAgeMs: 181_000,
      reason: 'no handshake or traffic from the peer for 181 s (window 180 s)',
    })
  })

  it('is unhealthy before the first handshake (0 in the dump)', () => {
    const { state } = evaluateHealth(
      'wg0',
      sample(peer({ latestHandshake: null, rxBytes: 0 })),
      undefined,
      T0,
      WINDOW,
    )
    expect(state).toMatchObject({
      up: true,
      healthy: false,
      handshakeAgeMs: null,
      reason: 'no handshake with the peer yet',
    })
  })

  it('counts received bytes as a sign of life between handshakes (short windows rely on it)', () => {
    const window = 3_000
    let memory: HealthMemory | undefined
    const at = (ms: number, rxBytes: number) => {
      const next = evaluateHealth('wg0', sample(peer({ rxBytes })), memory, T0 + ms, window)
      memory = next.memory
      return next.state
    }
    expect(at(1_000, 100)).toMatchObject({ healthy: true, lastReceiveAgeMs: null })
    expect(at(2_000, 132)).toMatchObject({ healthy: true, lastReceiveAgeMs: 0 })
    expect(at(4_500, 164)).toMatchObject({ healthy: true, handshakeAgeMs: 4_500, lastReceiveAgeMs: 0 })
    expect(at(6_000, 164)).toMatchObject({ healthy: true, lastReceiveAgeMs: 1_500 })
    expect(at(7_600, 164)).toMatchObject({
      healthy: false,
      lastReceiveAgeMs: 3_100,
      reason: 'no handshake or traffic from the peer for 3.1 s (window 3 s)',
    })
    expect(at(9_000, 196)).toMatchObject({ healthy: true, lastReceiveAgeMs: 0 })
  })

  it('starts over when the counters go backwards (the interface was recreated)', () => {
    const memory = { rxBytes: 10_000, lastReceiveAt: T0, handshake: T0 / 1000, handshakeAt: T0, polledAt: T0 }
    const { state, memory: next } = evaluateHealth(
      'wg0',
      sample(peer({ rxBytes: 92 })),
      memory,
      T0 + 1_000,
      WINDOW,
    )
    expect(state.lastReceiveAgeMs).toBeNull()
    expect(next).toMatchObject({ rxBytes: 92, lastReceiveAt: null })
  })

  it('is down when the interface is missing or down, and keeps the memory', () => {
    const memory = { rxBytes: 5, lastReceiveAt: T0, handshake: T0 / 1000, handshakeAt: T0, polledAt: T0 }
    const missing = evaluateHealth('wg0', sample(null, { present: false, linkUp: false }), memory, T0, WINDOW)
    expect(missing.state).toMatchObject({
      up: false,
      missing: true,
      inPlace: false,
      healthy: false,
      reason: 'interface wg0 does not exist',
    })
    expect(missing.memory).toBe(memory)
    const down = evaluateHealth('wg0', sample(peer(), { linkUp: false }), memory, T0, WINDOW)
    expect(down.state).toMatchObject({
      up: false,
      missing: false,
      inPlace: false,
      healthy: false,
      reason: 'interface wg0 is down',
    })
  })

  it('is not in place, and not healthy, while the cloud broker is routed around the interface', () => {
    const around = sample(peer(), { routedElsewhere: '10.78.0.2 through eth0 via 10.77.0.2' })
    expect(evaluateHealth('wg0', around, undefined, T0 + 5_000, WINDOW).state).toMatchObject({
      up: true,
      missing: false,
      inPlace: false,
      healthy: false,
      handshakeAgeMs: 5_000,
      reason:
        'the kernel routes the cloud broker address 10.78.0.2 through eth0 via 10.77.0.2, not through wg0',
    })
    // A peer not configured: nothing reaches the cloud, around the tunnel or through it.
    expect(evaluateHealth('wg0', sample(null), undefined, T0, WINDOW).state).toMatchObject({ inPlace: true })
  })

  it('reports a missing peer and a failed poll', () => {
    expect(evaluateHealth('wg0', sample(null), undefined, T0, WINDOW).state).toMatchObject({
      up: true,
      healthy: false,
      reason: 'the peer is not configured on the interface',
    })
    const failed = sample(null, {
      present: false,
      error: { code: 'VPN_ERR_WG_NOT_FOUND', message: '`wg` was not found' },
    })
    expect(evaluateHealth('wg0', failed, undefined, T0, WINDOW).state).toMatchObject({
      up: false,
      healthy: false,
      reason: 'VPN_ERR_WG_NOT_FOUND: `wg` was not found',
      // Failed, not found missing: no conclusion that the tunnel is gone (the gateway's connect gate
      // keeps what the last poll that worked said).
      missing: false,
      pollFailed: true,
      inPlace: false,
    })
  })

  it('never reports a negative handshake age (the dump has whole seconds)', () => {
    expect(evaluateHealth('wg0', sample(peer()), undefined, T0 - 400, WINDOW).state.handshakeAgeMs).toBe(0)
  })

  describe('when the wall clock steps (a Raspberry Pi has no real-time clock)', () => {
    // The wall clock and a monotonic one, apart: `step` moves the wall clock alone.
    function clocks() {
      let wall = T0
      let mono = 50_000
      let memory: HealthMemory | undefined
      return {
        advance(ms: number) {
          wall += ms
          mono += ms
        },
        step(ms: number) {
          wall += ms
        },
        poll(p: WgPeerDump) {
          const next = evaluateHealth('wg0', sample(p), memory, wall, WINDOW, mono)
          memory = next.memory
          return next.state
        },
      }
    }

    it('a step back does not make a handshake the polls saw grow old look fresh again', () => {
      const c = clocks()
      const p = peer({ latestHandshake: T0 / 1000 })
      c.advance(60_000)
      expect(c.poll(p)).toMatchObject({ healthy: true, handshakeAgeMs: 60_000 })
      // 170 s later the handshake is 230 s old; the clock is stepped back an hour meanwhile.
      c.advance(100_000)
      c.step(-3_600_000)
      c.advance(70_000)
      expect(c.poll(p)).toMatchObject({
        healthy: false,
        handshakeAgeMs: 230_000,
        reason: 'no handshake or traffic from the peer for 230 s (window 180 s)',
      })
    })

    it('a step forward does not make a live tunnel look dead', () => {
      const c = clocks()
      c.advance(5_000)
      expect(c.poll(peer())).toMatchObject({ healthy: true, handshakeAgeMs: 5_000 })
      // NTP moves the clock two months on; the same handshake is 10 s old on the monotonic clock.
      c.step(60 * 86_400_000)
      c.advance(5_000)
      expect(c.poll(peer())).toMatchObject({ healthy: true, handshakeAgeMs: 10_000 })
    })

    it('a new handshake is no older than the time since the previous poll, whatever the wall clock says', () => {
      const c = clocks()
      c.advance(5_000)
      c.poll(peer())
      // The clock jumps a day on, and the kernel stamps the next handshake with the old time
      // (seen with a clock corrected between the handshake and the poll).
      c.step(86_400_000)
      c.advance(4_000)
      expect(c.poll(peer({ latestHandshake: T0 / 1000 + 7 }))).toMatchObject({
        healthy: true,
        handshakeAgeMs: 4_000,
      })
      // A day back: the wall clock now reads the handshake as in the future.
      c.step(-2 * 86_400_000)
      c.advance(4_000)
      expect(c.poll(peer({ latestHandshake: T0 / 1000 + 20 }))).toMatchObject({
        healthy: true,
        handshakeAgeMs: 0,
      })
      c.advance(181_000)
      expect(c.poll(peer({ latestHandshake: T0 / 1000 + 20 }))).toMatchObject({
        healthy: false,
        handshakeAgeMs: 181_000,
      })
    })
  })
})
