/**
 * What a run measures. Every load runs against a Mosquitto setup and a gateway
 * setup in the same round, in alternating order, so drift on the machine hits
 * both. Counts and times bound every load (`maxPerPublisher`, `durationMs`).
 */

const PUBLISHER_WINDOW = 256
/** Closed loop: at most 100 messages in flight end to end, 25 per publisher. */
const CLOSED_WINDOW = 25
/** Fixed rate: 2,000 messages/s in all, 500 per publisher. */
const RATE_PER_PUBLISHER = 500

function loads(quick) {
  const closed = quick ? 1_000 : 2_500
  const rate = quick ? 1_500 : 3_000
  const cap = (ms, perSecond) => Math.ceil((ms / 1000) * perSecond)
  // A flood is a burst of a fixed size (the same for both systems), sent as fast as the edge takes it.
  const floodLoad = (qos, payloadSize) => ({
    mode: 'flood',
    qos,
    payloadSize,
    window: PUBLISHER_WINDOW,
    durationMs: quick ? 1_500 : 4_000,
    maxPerPublisher: (payloadSize > 256 ? 2_000 : 8_000) / (quick ? 4 : 1),
  })
  // Closed loop, QoS 0 too: a slot comes back when the cloud subscriber has seen the message, whatever
  // its QoS. A QoS 0 message lost on the way never gives its slot back; with every slot held, the
  // publisher stops after 3 s without progress (bench/publisher.mjs), and the loss is counted.
  const closedLoad = (qos, payloadSize) => ({
    mode: 'closed',
    qos,
    payloadSize,
    window: CLOSED_WINDOW,
    durationMs: closed,
    maxPerPublisher: cap(closed, 40_000),
  })
  // One device, one QoS 1 message in flight: the PUBACK round trip, with nothing queued before it.
  const serialLoad = (payloadSize) => ({
    mode: 'serial',
    qos: 1,
    payloadSize,
    publishers: 1,
    window: 1,
    durationMs: quick ? 1_000 : 3_000,
    maxPerPublisher: quick ? 1_000 : 5_000,
  })
  // The closed loop through a restart of the edge (bench/lib/restart.mjs): sending for beforeMs,
  // SIGTERM and a new spawn, PUBACKs counted for afterMs from that spawn; the parent ends it, and
  // durationMs only bounds it.
  const restartLoad = (payloadSize) => ({
    mode: 'restart',
    qos: 1,
    payloadSize,
    window: CLOSED_WINDOW,
    beforeMs: quick ? 1_500 : 2_000,
    afterMs: 4_000,
    durationMs: 30_000,
    maxPerPublisher: 120_000,
  })
  const rateLoad = (qos, payloadSize, idle = 0) => ({
    mode: 'rate',
    qos,
    payloadSize,
    ratePerSecond: RATE_PER_PUBLISHER,
    durationMs: rate,
    maxPerPublisher: cap(rate, RATE_PER_PUBLISHER),
    idle,
  })
  // After the drain's marker arrived (bench/lib/drain.mjs): how long nothing new may arrive before
  // the messages without a PUBACK (QoS 0, or never acknowledged) that are still missing count as lost.
  const quietMs = quick ? 1_500 : 3_000
  const specs = {
    'closed-q1-64': closedLoad(1, 64),
    'closed-q1-1k': closedLoad(1, 1024),
    'closed-q0-64': closedLoad(0, 64),
    'serial-q1-64': serialLoad(64),
    'restart-q1-64': restartLoad(64),
    'flood-q1-64': floodLoad(1, 64),
    'flood-q1-1k': floodLoad(1, 1024),
    'flood-q0-64': floodLoad(0, 64),
    'rate-q1-64': rateLoad(1, 64),
    'rate-q0-64': rateLoad(0, 64),
    'rate-q1-1k': rateLoad(1, 1024),
    'idle1000-rate-q1-64': rateLoad(1, 64, quick ? 250 : 1_000),
  }
  for (const spec of Object.values(specs)) spec.quietMs = quietMs
  return specs
}

export const LOAD_TEXT = {
  flood:
    'a burst of 8,000 (64 B) or 2,000 (1 KiB) messages per publisher (a quarter with --quick) as fast as the edge takes them; QoS 1 with 256 unacknowledged per publisher; at most 4 s of sending',
  closed:
    'at most 100 messages in flight end to end (25 per publisher; a slot comes back when the cloud subscriber has seen the message), QoS 1, or QoS 0 for closed-q0',
  rate: '2,000 msg/s in all (500 per publisher), open loop',
  restart:
    'the closed loop through a restart of the edge (SIGTERM, then the same config and state on the same ports; devices reconnect every 20 ms): PUBACK/s per 0.5 s for 4 s from the new spawn, against the rate of the second before the stop',
  serial:
    'one publisher, one QoS 1 message in flight (the next when the PUBACK came); "PUBACK ms" is the round trip at the device; at most 5,000 messages and 3 s (1,000 and 1 s with --quick)',
}

const PSK_PAIR = ['mosquitto-psk', 'gateway-psk']
/** The group every load runs in: the TLS-PSK pair on 2 cores (the headline and the goals read it). */
export const PSK_GROUP = '2 cores, TLS-PSK'
const TCP_GROUP = ['mosquitto-tcp', 'gateway-tcp', 'gateway-sealed']
/**
 * Issue 5's full path, each step on and off in one table: the Mosquitto bridge
 * (no signing, no sealing), the gateway signing what it opened (TLS-PSK or
 * sealed devices), and the same HPKE-sealing it to the cloud recipient first.
 */
export const FULL_PATH_GROUP = '2 cores, full path (sign, HPKE)'
const FULL_PATH = [
  'mosquitto-psk',
  'gateway-psk',
  'gateway-psk-hpke',
  'gateway-sealed',
  'gateway-sealed-hpke',
]
/**
 * The queue's two durability modes (cloud.queue.durability) side by side: PUBACK after the fsync
 * (the default, survives a power loss) and after the write (survives kill -9 of the gateway).
 */
export const DURABILITY_GROUP = '2 cores, durability (TLS-PSK)'
const DURABILITY = ['mosquitto-psk', 'gateway-psk', 'gateway-psk-write']
/**
 * The full path (slow HPKE setups) waits longer, after the drain's marker, for
 * messages without a PUBACK; acknowledged messages are waited for by the marker
 * (bench/lib/drain.mjs), not by a silence.
 */
const FULL_PATH_QUIET_MS = 15_000

/**
 * Groups of (setups, loads): the TLS-PSK pair gets every load; the plain TCP
 * modes (password, and sealed payloads) the three headline loads; the full
 * path (signing, HPKE re-sealing) the closed loop and 2,000 msg/s, also with
 * --quick; the durability modes the closed loop, the serial round trip and 2,000 msg/s (the
 * closed loop with --quick); the one-core run (edge pinned to CPU 0, everything else to CPU 1)
 * the three headline loads.
 */
export function buildPlan({ quick = false, only, setups, sealed = true, pinned = true } = {}) {
  const all = loads(quick)
  const headline = ['closed-q1-64', 'rate-q1-64', 'flood-q1-64']
  // Quick runs a subset, unless --only picks the loads.
  const short = quick && !only
  const pskLoads = short
    ? [...headline, 'closed-q0-64', 'serial-q1-64', 'restart-q1-64', 'idle1000-rate-q1-64']
    : Object.keys(all)
  const groups = [
    { name: PSK_GROUP, setups: PSK_PAIR, loads: pskLoads, pinned: false },
    {
      name: '2 cores, plain TCP',
      setups: sealed ? TCP_GROUP : TCP_GROUP.filter((s) => s !== 'gateway-sealed'),
      loads: short ? ['closed-q1-64'] : headline,
      pinned: false,
    },
  ]
  groups.push({
    name: FULL_PATH_GROUP,
    setups: sealed ? FULL_PATH : FULL_PATH.filter((s) => !s.startsWith('gateway-sealed')),
    loads: ['closed-q1-64', 'rate-q1-64'],
    pinned: false,
    quietMs: FULL_PATH_QUIET_MS,
  })
  groups.push({
    name: DURABILITY_GROUP,
    setups: DURABILITY,
    loads: short ? ['closed-q1-64'] : ['closed-q1-64', 'serial-q1-64', 'rate-q1-64'],
    pinned: false,
  })
  if (pinned) {
    groups.push({
      name: '1 core (edge pinned to CPU 0)',
      setups: PSK_PAIR,
      loads: short ? ['closed-q1-64'] : headline,
      pinned: true,
    })
  }
  const trials = []
  for (const group of groups) {
    if (setups) group.setups = group.setups.filter((s) => setups.includes(s))
    if (group.setups.length === 0) continue
    for (const loadName of group.loads) {
      if (only && !only.includes(loadName)) continue
      trials.push({
        group: group.name,
        loadName,
        load: group.quietMs ? { ...all[loadName], quietMs: group.quietMs } : all[loadName],
        setups: group.setups,
        pinned: group.pinned,
      })
    }
  }
  if (trials.length === 0) {
    throw new Error(
      `Expected --only to name loads among ${Object.keys(all).join(', ')}, got ${only?.join(',')}`,
    )
  }
  return trials
}
