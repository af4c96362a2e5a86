/**
 * A seeded MQTT packet fuzzer, shared by test/integration/fuzz.test.ts (bounded,
 * in CI) and bench/fuzz.mjs (longer runs): valid packets from mqtt-packet's
 * generator, mutated 1 to 3 times, sent over raw sockets before or after a
 * CONNECT that authenticated. The same seed gives the same cases.
 */
import { connect as netConnect } from 'node:net'
import mqttPacket from 'mqtt-packet'

/** mulberry32: small, fast, and the same sequence everywhere for a seed. */
export function createRandom(seed) {
  let state = seed >>> 0
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (t ^ (t >>> 14)) >>> 0
  }
  return {
    next,
    int: (n) => next() % n,
    chance: (p) => next() / 0x1_0000_0000 < p,
    pick: (list) => list[next() % list.length],
    bytes: (n) => Buffer.from(Array.from({ length: n }, () => next() & 0xff)),
  }
}

/** Bytes that break MQTT rules when they land in the right place: NUL, controls, UTF-8 lead bytes, wildcards. */
const INTERESTING = [0x00, 0x01, 0x1f, 0x7f, 0x80, 0x9f, 0xc0, 0xc2, 0xed, 0xf4, 0xff, 0x23, 0x2b, 0x2f, 0x24]

function remainingLengthBytes(n) {
  const out = []
  do {
    let byte = n % 128
    n = Math.floor(n / 128)
    if (n > 0) byte |= 0x80
    out.push(byte)
  } while (n > 0)
  return Buffer.from(out)
}

/** Where the remaining length field of the packet at the start of `b` ends. */
function headerEnd(b) {
  let i = 1
  while (i < b.length && i < 5 && b[i] & 0x80) i++
  return Math.min(i + 1, b.length)
}

const MUTATORS = {
  flip_bit(b, r) {
    if (b.length === 0) return b
    const o = Buffer.from(b)
    const i = r.int(o.length)
    o[i] ^= 1 << r.int(8)
    return o
  },
  interesting_byte(b, r) {
    if (b.length === 0) return b
    const o = Buffer.from(b)
    o[r.int(o.length)] = r.pick(INTERESTING)
    return o
  },
  first_byte(b, r) {
    if (b.length === 0) return b
    const o = Buffer.from(b)
    o[0] = r.chance(0.5) ? r.next() & 0xff : (o[0] & 0xf0) | r.int(16)
    return o
  },
  remaining_length(b, r) {
    const end = headerEnd(b)
    const body = b.subarray(end)
    const choices = [
      0,
      Math.max(0, body.length - 1 - r.int(4)),
      body.length + 1 + r.int(8),
      r.int(268_435_456),
      127,
      128,
      16_384,
    ]
    const rl = r.chance(0.1)
      ? Buffer.from([0xff, 0xff, 0xff, 0xff, 0x7f])
      : remainingLengthBytes(r.pick(choices))
    return Buffer.concat([b.subarray(0, 1), rl, body])
  },
  string_length(b, r) {
    if (b.length < 4) return b
    const o = Buffer.from(b)
    const at = headerEnd(b) + r.int(Math.max(1, o.length - headerEnd(b) - 1))
    if (at + 1 >= o.length) return o
    o.writeUInt16BE(r.pick([0, 1, 0xffff, r.int(0x10000), o.length - at]) & 0xffff, at)
    return o
  },
  insert(b, r) {
    const at = r.int(b.length + 1)
    return Buffer.concat([b.subarray(0, at), r.bytes(1 + r.int(16)), b.subarray(at)])
  },
  delete(b, r) {
    if (b.length < 2) return b
    const at = r.int(b.length)
    return Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + r.int(16))])
  },
  truncate(b, r) {
    return b.subarray(0, r.int(b.length + 1))
  },
  duplicate(b, r) {
    if (b.length === 0) return b
    const at = r.int(b.length)
    const end = Math.min(b.length, at + 1 + r.int(32))
    return Buffer.concat([b.subarray(0, end), b.subarray(at, end), b.subarray(end)])
  },
}
export const MUTATOR_NAMES = Object.keys(MUTATORS)

/**
 * One to three mutations of `bytes`; sometimes spliced with, or followed by,
 * another packet of `others` (sequences matter: a second CONNECT, a PUBLISH
 * pipelined behind a CONNECT).
 */
export function mutate(bytes, r, others) {
  let out = bytes
  const ops = []
  const n = 1 + r.int(3)
  for (let i = 0; i < n; i++) {
    const name = r.pick(MUTATOR_NAMES)
    out = MUTATORS[name](out, r)
    ops.push(name)
  }
  if (others.length > 0 && r.chance(0.15)) {
    const other = r.pick(others)
    if (r.chance(0.5)) {
      out = Buffer.concat([out.subarray(0, r.int(out.length + 1)), other.subarray(r.int(other.length))])
      ops.push('splice')
    } else {
      out = Buffer.concat([out, other])
      ops.push('append')
    }
  }
  return { bytes: out, ops }
}

/**
 * Valid packets to start from. `device`: { clientId, username, password, topic,
 * sealedTopic }, the device that authenticates before the cases after
 * authentication; `sealed(topic)`: a fresh sealed payload for that topic. `pre`
 * (default `device`): the device whose CONNECTs are mutated. Another device, so
 * that the failed logins they cause (and the lockout's growing pauses) do not
 * slow the logins of the other half.
 */
export function corpus(device, sealed, pre = device) {
  const connectFor =
    (who) =>
    (extra = {}) =>
      mqttPacket.generate({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 4,
        clientId: who.clientId,
        clean: true,
        keepalive: 30,
        username: who.username,
        password: Buffer.from(who.password),
        ...extra,
      })
  const connect = connectFor(device)
  const preConnect = connectFor(pre)
  const publish = (topic, payload, qos, extra = {}) =>
    mqttPacket.generate({
      cmd: 'publish',
      topic,
      payload,
      qos,
      ...(qos > 0 && { messageId: 1 + (payload.length % 60_000) }),
      retain: false,
      dup: false,
      ...extra,
    })
  const before = [
    preConnect(),
    preConnect({ clean: false }),
    preConnect({ will: { topic: `${pre.topic}/will`, payload: Buffer.from('gone'), qos: 1, retain: false } }),
    preConnect({ will: { topic: pre.sealedTopic, payload: sealed(pre.sealedTopic), qos: 0, retain: true } }),
    preConnect({ protocolId: 'MQIsdp', protocolVersion: 3 }),
    preConnect({ clientId: '' }),
  ]
  const after = [
    publish(`${device.topic}/t`, Buffer.from('reading 1'), 0),
    publish(`${device.topic}/t`, Buffer.from('reading 2'), 1),
    publish(`${device.topic}/t/ü`, Buffer.alloc(300, 0x31), 2),
    publish(device.sealedTopic, sealed(device.sealedTopic), 1),
    publish(device.sealedTopic, sealed(device.sealedTopic), 0),
    publish(`${device.topic}/retained`, Buffer.from('r'), 1, { retain: true }),
    mqttPacket.generate({
      cmd: 'subscribe',
      messageId: 5,
      subscriptions: [
        { topic: `${device.topic}/#`, qos: 1 },
        { topic: '+/+/x', qos: 0 },
      ],
    }),
    mqttPacket.generate({ cmd: 'unsubscribe', messageId: 6, unsubscriptions: [`${device.topic}/#`] }),
    mqttPacket.generate({ cmd: 'puback', messageId: 7 }),
    mqttPacket.generate({ cmd: 'pubrec', messageId: 8 }),
    mqttPacket.generate({ cmd: 'pubrel', messageId: 9 }),
    mqttPacket.generate({ cmd: 'pubcomp', messageId: 10 }),
    mqttPacket.generate({ cmd: 'pingreq' }),
    mqttPacket.generate({ cmd: 'disconnect' }),
  ]
  return { before, after, connectAs: (worker) => connect({ clientId: `${device.clientId}-w${worker}` }) }
}

/** A raw TCP connection that records whether the gateway closed it. */
function openSocket(port, localAddress) {
  return new Promise((resolve, reject) => {
    const socket = netConnect({
      host: '127.0.0.1',
      port,
      noDelay: true,
      ...(localAddress && { localAddress }),
    })
    const state = { socket, closed: false, bytes: 0, data: [] }
    socket.on('data', (chunk) => {
      state.bytes += chunk.length
      state.data.push(chunk)
    })
    socket.on('close', () => {
      state.closed = true
    })
    socket.once('connect', () => {
      socket.on('error', () => undefined)
      resolve(state)
    })
    socket.once('error', reject)
  })
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

async function waitClosed(state, ms) {
  const deadline = Date.now() + ms
  while (!state.closed && Date.now() < deadline) await sleep(2)
}

/** Sends the valid CONNECT and waits (bounded) for its CONNACK 0. */
async function authenticate(state, connect) {
  state.socket.write(connect)
  const deadline = Date.now() + 5000
  while (Date.now() < deadline && !state.closed) {
    const got = Buffer.concat(state.data)
    if (got.length >= 4) return got[0] === 0x20 && got[3] === 0
    await sleep(1)
  }
  return false
}

/**
 * Runs `cases` cases against the plain listener on `port`, `concurrency` at a
 * time, stopping early when `deadline` (ms since epoch) passes. Cases before
 * authentication come from `beforeAddress` when given (another loopback address,
 * so the lockout's per-address pauses they earn stay off the other half). Returns what
 * happened, counted: cases sent per phase, connections the gateway closed,
 * authentications that failed (the gateway refusing its own device would be a bug).
 */
export async function runFuzz({
  port,
  seed,
  cases,
  concurrency = 4,
  deadline = Number.POSITIVE_INFINITY,
  base,
  settleMs = 20,
  beforeAddress,
}) {
  const r = createRandom(seed)
  // Draw every case up front: the sequence does not depend on timing.
  const plan = []
  for (let i = 0; i < cases; i++) {
    const phase = r.chance(0.5) ? 'before' : 'after'
    const pool = phase === 'before' ? base.before : base.after
    const { bytes, ops } = mutate(r.pick(pool), r, pool)
    plan.push({ phase, bytes, ops })
  }
  const result = { sent: 0, before: 0, after: 0, closedByGateway: 0, authFailed: 0, ops: {} }
  let next = 0
  async function worker(w) {
    const connect = base.connectAs(w)
    while (next < plan.length && Date.now() < deadline) {
      const c = plan[next++]
      const state = await openSocket(port, c.phase === 'before' ? beforeAddress : undefined)
      if (c.phase === 'after' && !(await authenticate(state, connect))) {
        result.authFailed++
        state.socket.destroy()
        continue
      }
      state.socket.write(c.bytes)
      await waitClosed(state, settleMs)
      if (state.closed) result.closedByGateway++
      state.socket.destroy()
      result.sent++
      result[c.phase]++
      for (const op of c.ops) result.ops[op] = (result.ops[op] ?? 0) + 1
    }
  }
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)))
  return result
}
