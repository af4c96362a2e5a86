import type { WgPeerDump } from './dump.js'

/** One poll of the tunnel. */
export interface TunnelSample {
  /** The interface exists. */
  present: boolean
  /** The interface is administratively up. */
  linkUp: boolean
  /** The configured peer as `wg show dump` reports it; null when it is not configured. */
  peer: WgPeerDump | null
  /** Why the poll failed (a tool missing, a timeout); null when it worked. */
  error: { code: string; message: string } | null
  /**
   * Set when the kernel routes the cloud broker's address anywhere but through the interface
   * (a route added or changed since the tunnel came up): where it goes instead.
   */
  routedElsewhere?: string
}

/** What the health observable emits, once per poll. */
export interface TunnelState {
  interfaceName: string
  /** The interface exists and is up. */
  up: boolean
  /** The poll worked and found no such interface (false when it exists, or when the poll failed). */
  missing: boolean
  /** The poll itself failed (a tool missing or timing out, no privilege): it tells nothing of the tunnel. */
  pollFailed: boolean
  /**
   * The interface is up and the cloud broker's address is routed through it (when the poll checks
   * the route): traffic to the cloud cannot leave around the tunnel. False when the poll failed.
   */
  inPlace: boolean
  /** Since the latest handshake; null when there never was one. */
  handshakeAgeMs: number | null
  /** Since the received byte count last grew (authenticated packets only); null until it is seen to grow. */
  lastReceiveAgeMs: number | null
  rxBytes: number
  txBytes: number
  /** Where the peer was last seen (`203.0.113.5:51820`); null if never. */
  endpoint: string | null
  /** A handshake, or authenticated traffic from the peer, within the health window. */
  healthy: boolean
  /** Why it is not healthy; null when it is. */
  reason: string | null
  /** Unix time in ms of the poll. */
  checkedAt: number
}

/**
 * What evaluating one sample remembers for the next. Times in it are on the monotonic clock, so a
 * step of the wall clock (a Raspberry Pi has no real-time clock: NTP moves it at boot, sometimes
 * back) cannot make an old handshake look fresh.
 */
export interface HealthMemory {
  rxBytes: number
  /** Monotonic ms when the received byte count was last seen to grow. */
  lastReceiveAt: number | null
  /** The latest handshake as the dump gave it (Unix seconds), to see when it changes. */
  handshake: number | null
  /** Monotonic ms when that handshake happened, as far as the polls can bound it. */
  handshakeAt: number | null
  /** Monotonic ms of the poll that read the peer. */
  polledAt: number
}

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`
}

/**
 * When the latest handshake happened, on the monotonic clock. WireGuard reports it in wall-clock
 * seconds, which only the first poll has to trust. After that, a handshake the polls already saw
 * ages on the monotonic clock, and a new one happened since the previous poll, so its age is at
 * most the time since then, whatever the wall clock did in between.
 */
function handshakeAt(
  latest: number | null,
  memory: HealthMemory | undefined,
  now: number,
  mono: number,
): number | null {
  if (latest === null) return null
  if (memory !== undefined && memory.handshake === latest && memory.handshakeAt !== null)
    return memory.handshakeAt
  const wallAge = Math.max(0, now - latest * 1000)
  const age = memory === undefined ? wallAge : Math.min(wallAge, Math.max(0, mono - memory.polledAt))
  return mono - age
}

/**
 * Turns a sample into a state. Healthy means the freshest sign of life from the peer is within
 * `windowMs`: the latest handshake, or (seen across polls) the moment the received byte count
 * last grew. WireGuard only re-handshakes every 2 minutes, so a window shorter than that relies
 * on received traffic (keepalives from the peer). `now` is the wall clock (the handshake's unit,
 * and `checkedAt`); ages are measured on `mono`, a monotonic clock. Pure, so it is tested with
 * made-up clocks.
 */
export function evaluateHealth(
  interfaceName: string,
  sample: TunnelSample,
  memory: HealthMemory | undefined,
  now: number,
  windowMs: number,
  mono: number = now,
): { state: TunnelState; memory: HealthMemory | undefined } {
  const base = {
    interfaceName,
    up: false,
    missing: false,
    pollFailed: false,
    inPlace: false,
    handshakeAgeMs: null,
    lastReceiveAgeMs: null,
    rxBytes: 0,
    txBytes: 0,
    endpoint: null,
    healthy: false,
    checkedAt: now,
  }
  if (sample.error !== null) {
    return {
      state: { ...base, pollFailed: true, reason: `${sample.error.code}: ${sample.error.message}` },
      memory,
    }
  }
  if (!sample.present)
    return { state: { ...base, missing: true, reason: `interface ${interfaceName} does not exist` }, memory }
  if (!sample.linkUp) return { state: { ...base, reason: `interface ${interfaceName} is down` }, memory }
  const peer = sample.peer
  const inPlace = sample.routedElsewhere === undefined
  if (peer === null) {
    return {
      state: { ...base, up: true, inPlace, reason: 'the peer is not configured on the interface' },
      memory,
    }
  }
  let lastReceiveAt: number | null = null
  if (memory !== undefined && peer.rxBytes >= memory.rxBytes) {
    lastReceiveAt = peer.rxBytes > memory.rxBytes ? mono : memory.lastReceiveAt
  }
  const shookAt = handshakeAt(peer.latestHandshake, memory, now, mono)
  const handshakeAgeMs = shookAt === null ? null : mono - shookAt
  const lastReceiveAgeMs = lastReceiveAt === null ? null : mono - lastReceiveAt
  const ages = [handshakeAgeMs, lastReceiveAgeMs].filter((a): a is number => a !== null)
  const freshest = ages.length === 0 ? null : Math.min(...ages)
  // However alive the peer, traffic to the cloud would not go through the tunnel.
  const healthy = inPlace && handshakeAgeMs !== null && freshest !== null && freshest <= windowMs
  let reason: string | null = null
  if (!inPlace)
    reason = `the kernel routes the cloud broker address ${sample.routedElsewhere}, not through ${interfaceName}`
  else if (handshakeAgeMs === null) reason = 'no handshake with the peer yet'
  else if (!healthy) {
    reason = `no handshake or traffic from the peer for ${seconds(freshest ?? handshakeAgeMs)} (window ${seconds(windowMs)})`
  }
  return {
    state: {
      interfaceName,
      up: true,
      missing: false,
      pollFailed: false,
      inPlace,
      handshakeAgeMs,
      lastReceiveAgeMs,
      rxBytes: peer.rxBytes,
      txBytes: peer.txBytes,
      endpoint: peer.endpoint,
      healthy,
      reason,
      checkedAt: now,
    },
    memory: {
      rxBytes: peer.rxBytes,
      lastReceiveAt,
      handshake: peer.latestHandshake,
      handshakeAt: shookAt,
      polledAt: mono,
    },
  }
}
