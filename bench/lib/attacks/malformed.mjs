/**
 * (8) Malformed packets from raw sockets: packets made by mqtt-packet's
 * generator with random fields, then mutated (bit flips, random bytes,
 * truncation, insertion, repetition, a random remaining length), seeded so a
 * run can be repeated. Half the cases are a mutated CONNECT (and what follows
 * it) before authentication, from `ctx.address`; half are mutated packets
 * after a valid CONNECT of the flooder (client id `flooder-fz-<n>`), from
 * `ctx.sessionAddress`. Each case's socket lives at most `caseMs`.
 */
import mqttPacket from 'mqtt-packet'
import { connectPacket } from '../mqtt-wire.mjs'
import { awaitConnack, openTcp, sleep } from './wire.mjs'

/** mulberry32: a small seeded PRNG, [0, 1). */
export function prng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

const ALPHABET = [
  'a',
  'b',
  'z',
  '0',
  '/',
  '+',
  '#',
  '$',
  ' ',
  '\u0000',
  '\u0001',
  '\u007f',
  'é',
  '\uffff',
  '𝄞',
]

function generators(rng, flooder) {
  const int = (n) => Math.floor(rng() * n)
  const pick = (xs) => xs[int(xs.length)]
  const str = (max) => Array.from({ length: int(max) }, () => pick(ALPHABET)).join('')
  const bytes = (max) => Buffer.from(Array.from({ length: int(max) }, () => int(256)))
  const topic = () => (rng() < 0.6 ? `devices/${flooder}/${str(12)}` : str(20))
  const id = () => 1 + int(65_535)
  return {
    rng,
    int,
    connect: () => ({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clean: rng() < 0.8,
      clientId: rng() < 0.7 ? `fz-${str(10)}` : str(10),
      keepalive: int(120),
      ...(rng() < 0.6 && { username: rng() < 0.5 ? `fuzz-${int(1000)}` : str(12) }),
      ...(rng() < 0.5 && { password: bytes(24) }),
      ...(rng() < 0.3 && { will: { topic: topic(), payload: bytes(16), qos: int(3), retain: rng() < 0.5 } }),
    }),
    session: [
      () => ({
        cmd: 'publish',
        topic: topic(),
        payload: bytes(64),
        qos: int(3),
        retain: rng() < 0.2,
        dup: rng() < 0.1,
        messageId: id(),
      }),
      () => ({
        cmd: 'subscribe',
        messageId: id(),
        subscriptions: Array.from({ length: 1 + int(3) }, () => ({ topic: topic(), qos: int(3) })),
      }),
      () => ({ cmd: 'unsubscribe', messageId: id(), unsubscriptions: [topic()] }),
      () => ({ cmd: pick(['puback', 'pubrec', 'pubrel', 'pubcomp']), messageId: id() }),
      () => ({ cmd: pick(['pingreq', 'disconnect']) }),
      () => ({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: str(8) }),
    ],
  }
}

/** A generated packet, or a few random bytes when the generator refuses the fields it was given. */
function generate(g, fields) {
  try {
    return mqttPacket.generate(fields)
  } catch {
    return Buffer.from(Array.from({ length: 2 + g.int(16) }, () => g.int(256)))
  }
}

function mutate(g, packet) {
  let buf = Buffer.from(packet)
  const ops = 1 + g.int(3)
  for (let i = 0; i < ops; i++) {
    const at = g.int(Math.max(1, buf.length))
    switch (g.int(6)) {
      case 0:
        buf[at] ^= 1 << g.int(8)
        break
      case 1:
        buf[at] = g.int(256)
        break
      case 2:
        buf = buf.subarray(0, Math.max(1, at))
        break
      case 3:
        buf = Buffer.concat([buf.subarray(0, at), Buffer.from([g.int(256), g.int(256)]), buf.subarray(at)])
        break
      case 4:
        buf = Buffer.concat([buf, buf.subarray(at)])
        break
      default:
        if (buf.length > 1) buf[1] = g.int(256)
    }
  }
  return buf
}

export async function malformed(ctx, { cases, seed, concurrency = 16, caseMs = 150 }) {
  const r = {
    seed,
    cases,
    run: 0,
    preAuth: 0,
    postAuth: 0,
    closedByGateway: 0,
    sessionRefused: 0,
    answered: 0,
  }
  let n = 0
  const one = async (index) => {
    // One generator per case: the same seed gives the same cases whatever order they run in.
    const g = generators(prng((seed * 1_000_003 + index) >>> 0), ctx.flooder.id)
    const preAuth = g.rng() < 0.5
    const packets = preAuth
      ? [mutate(g, generate(g, g.connect())), ...(g.rng() < 0.3 ? [generate(g, g.session[0]())] : [])]
      : Array.from({ length: 1 + g.int(3) }, () =>
          mutate(g, generate(g, g.session[g.int(g.session.length)]())),
        )
    let socket
    try {
      if (preAuth) {
        r.preAuth++
        socket = await openTcp(ctx.tcpPort, ctx.address)
      } else {
        r.postAuth++
        socket = await openTcp(ctx.tcpPort, ctx.sessionAddress)
        ctx.track(socket)
        const clientId = `${ctx.flooder.id}-fz-${index}`
        const connect = connectPacket({ clientId, username: ctx.flooder.id, password: ctx.flooder.password })
        const answer = await awaitConnack(socket, connect, 5_000)
        if (answer.code !== 0) {
          r.sessionRefused++
          socket.destroy()
          return
        }
      }
    } catch {
      return
    }
    ctx.track(socket)
    let closed = false
    socket.once('close', () => {
      closed = true
    })
    for (const p of packets) socket.write(p)
    const until = performance.now() + caseMs
    while (!closed && performance.now() < until) await sleep(10)
    if (closed) r.closedByGateway++
    socket.destroy()
    r.run++
  }
  const worker = async () => {
    while (n < cases && performance.now() < ctx.deadline) await one(n++)
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  await sleep(Math.max(0, ctx.deadline - performance.now()))
  return r
}
