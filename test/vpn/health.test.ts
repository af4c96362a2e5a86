import { afterEach, describe, expect, it, vi } from 'vitest'
import type { WgPeerDump } from '../../vpn/dump.js'
import { healthChanges, pollTunnel, watchTunnel } from '../../vpn/health.js'
import type { TunnelSample, TunnelState } from '../../vpn/health-state.js'

const NOW = 1_795_420_630_000

function peer(rxBytes: number): WgPeerDump {
  return {
    publicKey: Buffer.alloc(32, 0xb2).toString('base64'),
    hasPresharedKey: false,
    endpoint: '10.77.0.2:51821',
    allowedIps: ['10.78.0.2/32'],
    latestHandshake: NOW / 1000,
    rxBytes,
    txBytes: 0,
    persistentKeepalive: null,
  }
}

afterEach(() => {
  vi.useRealTimers()
})

describe('pollTunnel', () => {
  it('reads at once, then every pollMs after the previous read, and stops on unsubscribe', async () => {
    vi.useFakeTimers({ now: NOW })
    let reads = 0
    const signals: AbortSignal[] = []
    const read = async (signal: AbortSignal): Promise<TunnelSample> => {
      reads++
      signals.push(signal)
      return { present: true, linkUp: true, peer: peer(reads * 100), error: null }
    }
    const states: TunnelState[] = []
    const subscription = pollTunnel(read, { interfaceName: 'wg0', pollMs: 1000, windowMs: 3000 }).subscribe(
      (s) => states.push(s),
    )
    await vi.advanceTimersByTimeAsync(0)
    expect(reads).toBe(1)
    await vi.advanceTimersByTimeAsync(2999)
    expect(reads).toBe(3)
    expect(states.map((s) => [s.healthy, s.rxBytes])).toEqual([
      [true, 100],
      [true, 200],
      [true, 300],
    ])
    expect(vi.getTimerCount()).toBe(1)
    subscription.unsubscribe()
    expect(vi.getTimerCount()).toBe(0)
    expect(signals[0]?.aborted).toBe(true)
    await vi.advanceTimersByTimeAsync(10_000)
    expect(reads).toBe(3)
  })

  it('never overlaps reads, and drops a read that finishes after unsubscribe', async () => {
    vi.useFakeTimers({ now: NOW })
    let inFlight = 0
    let maxInFlight = 0
    const read = async (): Promise<TunnelSample> => {
      inFlight++
      maxInFlight = Math.max(maxInFlight, inFlight)
      await new Promise((r) => setTimeout(r, 2500))
      inFlight--
      return { present: false, linkUp: false, peer: null, error: null }
    }
    const states: TunnelState[] = []
    const subscription = pollTunnel(read, { interfaceName: 'wg0', pollMs: 100, windowMs: 3000 }).subscribe(
      (s) => states.push(s),
    )
    await vi.advanceTimersByTimeAsync(6000)
    expect(maxInFlight).toBe(1)
    const count = states.length
    subscription.unsubscribe()
    await vi.advanceTimersByTimeAsync(6000)
    expect(states.length).toBe(count)
    expect(vi.getTimerCount()).toBe(0)
  })
  it('turns a read that throws into an unhealthy state and keeps polling', async () => {
    vi.useFakeTimers({ now: NOW })
    let reads = 0
    const read = async (): Promise<TunnelSample> => {
      reads++
      throw new Error('boom')
    }
    const states: TunnelState[] = []
    const subscription = pollTunnel(read, { interfaceName: 'wg0', pollMs: 100, windowMs: 3000 }).subscribe(
      (s) => states.push(s),
    )
    await vi.advanceTimersByTimeAsync(250)
    subscription.unsubscribe()
    expect(reads).toBe(3)
    expect(states[0]).toMatchObject({ up: false, healthy: false, reason: 'VPN_ERR_COMMAND_FAILED: boom' })
  })
})

describe('watchTunnel', () => {
  it('emits an unhealthy state, not an error, when wg is missing', async () => {
    const state = await new Promise<TunnelState>((resolve, reject) => {
      const subscription = watchTunnel(
        { interfaceName: 'egnothere0', pollMs: 100 },
        { env: { PATH: '/nonexistent-edge-gateway' } },
      ).subscribe({
        next: (s) => {
          subscription.unsubscribe()
          resolve(s)
        },
        error: reject,
      })
    })
    expect(state).toMatchObject({ up: false, healthy: false })
    expect(state.reason).toMatch(/^VPN_ERR_IP_NOT_FOUND: `ip` was not found/)
  })
})

describe('healthChanges', () => {
  it('passes a state on only when up or healthy changes', async () => {
    const { from, lastValueFrom, toArray } = await import('rxjs')
    const s = (up: boolean, healthy: boolean, rxBytes: number) => ({ up, healthy, rxBytes }) as TunnelState
    const out = await lastValueFrom(
      from([
        s(true, true, 1),
        s(true, true, 2),
        s(true, false, 3),
        s(true, false, 4),
        s(false, false, 5),
        s(true, true, 6),
      ]).pipe(healthChanges(), toArray()),
    )
    expect(out.map((x) => x.rxBytes)).toEqual([1, 3, 5, 6])
  })
})
