import { distinctUntilChanged, type MonoTypeOperatorFunction, Observable } from 'rxjs'
import { describeError } from '../core/errors.js'
import { TUNNEL_DEFAULTS } from './config.js'
import { parseWgDump } from './dump.js'
import { VpnError } from './errors.js'
import { evaluateHealth, type HealthMemory, type TunnelSample, type TunnelState } from './health-state.js'
import { describeRoute, linkInfo, routeTo } from './link.js'
import { checkInterfaceName } from './names.js'
import { type CommandOptions, run } from './run.js'

/**
 * Reads one sample of the tunnel: the link and `wg show <if> dump`, and with `cloudAddress`,
 * `ip route get` of it (a route changed since the tunnel came up would take the cloud link around it).
 */
export async function readTunnelSample(
  interfaceName: string,
  peerPublicKey: string | undefined,
  options: CommandOptions & { signal?: AbortSignal; cloudAddress?: string } = {},
): Promise<TunnelSample> {
  try {
    const link = await linkInfo(interfaceName, options)
    if (link === null) return { present: false, linkUp: false, peer: null, error: null }
    let stdout: string
    try {
      stdout = (await run('wg', ['show', interfaceName, 'dump'], { ...options, timeoutMs: 5000 })).stdout
    } catch (err) {
      const stderr = err instanceof VpnError ? (err.details?.stderr ?? '') : ''
      // Refused, not absent: kernel WireGuard answers `wg show` to CAP_NET_ADMIN only, and
      // wireguard-go's control socket is its owner's. Said as such, or the tunnel would read as
      // missing for ever to a gateway that runs without the capability.
      if (/Unable to access interface: (Operation not permitted|Permission denied)/.test(stderr)) {
        throw new VpnError(
          'VPN_ERR_NO_PRIVILEGE',
          `wg show ${interfaceName} was refused (${/Permission denied/.test(stderr) ? 'Permission denied' : 'Operation not permitted'}): reading a WireGuard interface needs CAP_NET_ADMIN (kernel WireGuard), or the user that runs its wireguard-go; systemd: AmbientCapabilities=CAP_NET_ADMIN`,
          { details: (err as VpnError).details },
        )
      }
      // The link is there but no WireGuard behind it: a wireguard-go that died (the kernel removes
      // its interface a moment later), or the interface is not WireGuard at all.
      if (/Unable to access interface/.test(stderr)) {
        return { present: false, linkUp: false, peer: null, error: null }
      }
      throw err
    }
    const dump = parseWgDump(stdout)
    const peer =
      peerPublicKey === undefined
        ? (dump.peers[0] ?? null)
        : (dump.peers.find((p) => p.publicKey === peerPublicKey) ?? null)
    const sample: TunnelSample = { present: true, linkUp: link.up, peer, error: null }
    if (options.cloudAddress !== undefined) {
      const route = await routeTo(options.cloudAddress, options)
      if (route?.dev !== interfaceName) {
        sample.routedElsewhere = `${options.cloudAddress} ${describeRoute(route)}`
      }
    }
    return sample
  } catch (err) {
    const code = err instanceof VpnError ? err.code : 'VPN_ERR_COMMAND_FAILED'
    return { present: false, linkUp: false, peer: null, error: { code, message: describeError(err) } }
  }
}

export interface PollOptions {
  interfaceName: string
  pollMs: number
  /** Healthy while the freshest sign of life is younger than this. */
  windowMs: number
  /** The wall clock (the unit of WireGuard's handshake times); Date.now by default. */
  now?: () => number
  /** A monotonic clock, in ms, that ages are measured on; performance.now by default. */
  mono?: () => number
}

/**
 * Calls `read` now and then `pollMs` after each read finishes (reads never overlap), and emits
 * the evaluated state each time. Unsubscribing clears the timer and aborts a read in flight.
 * Read errors become states (`healthy: false` with a reason); the stream itself never errors.
 */
export function pollTunnel(
  read: (signal: AbortSignal) => Promise<TunnelSample>,
  options: PollOptions,
): Observable<TunnelState> {
  const now = options.now ?? Date.now
  const mono = options.mono ?? (() => performance.now())
  return new Observable<TunnelState>((subscriber) => {
    const abort = new AbortController()
    let timer: NodeJS.Timeout | undefined
    let memory: HealthMemory | undefined
    const tick = async (): Promise<void> => {
      timer = undefined
      let sample: TunnelSample
      try {
        sample = await read(abort.signal)
      } catch (err) {
        const code = err instanceof VpnError ? err.code : 'VPN_ERR_COMMAND_FAILED'
        sample = { present: false, linkUp: false, peer: null, error: { code, message: describeError(err) } }
      }
      if (abort.signal.aborted) return
      const next = evaluateHealth(options.interfaceName, sample, memory, now(), options.windowMs, mono())
      memory = next.memory
      subscriber.next(next.state)
      if (!abort.signal.aborted) timer = setTimeout(() => void tick(), options.pollMs)
    }
    void tick()
    return () => {
      abort.abort()
      if (timer !== undefined) clearTimeout(timer)
    }
  })
}

/** What `watchTunnel` needs of a `TunnelConfig` (a whole `TunnelConfig` fits). */
export interface WatchTarget {
  interfaceName: string
  peer?: { publicKey: string }
  pollMs?: number
  healthyHandshakeSeconds?: number
}

/**
 * Tunnel health as an observable, polled from `ip link` and `wg show <if> dump` every `pollMs`
 * (default 5000). Cold: each subscriber polls on its own; `share()` it for several consumers.
 */
export function watchTunnel(
  target: WatchTarget,
  options: CommandOptions & { now?: () => number; cloudAddress?: string } = {},
): Observable<TunnelState> {
  const interfaceName = checkInterfaceName(target.interfaceName)
  const seconds = target.healthyHandshakeSeconds ?? TUNNEL_DEFAULTS.healthyHandshakeSeconds
  const pollOptions: PollOptions = {
    interfaceName,
    pollMs: target.pollMs ?? TUNNEL_DEFAULTS.pollMs,
    windowMs: seconds * 1000,
  }
  if (options.now !== undefined) pollOptions.now = options.now
  return pollTunnel(
    (signal) => readTunnelSample(interfaceName, target.peer?.publicKey, { ...options, signal }),
    pollOptions,
  )
}

/** Passes a state on only when `up` or `healthy` changed: for logging transitions. */
export function healthChanges(): MonoTypeOperatorFunction<TunnelState> {
  return distinctUntilChanged((a, b) => a.up === b.up && a.healthy === b.healthy)
}
