/**
 * Raw MQTT 3.1.1 sessions for the attack bench: a stream parser that copes
 * with packets of any size (one copy per packet, not per chunk), plain TCP
 * sockets bound to a chosen loopback source address (each attacker is its own
 * "host"), and a session helper that connects and hands out later packets.
 */
import { connect as tcpConnect } from 'node:net'
import { CONNACK, connectPacket, remainingLengthSize } from '../mqtt-wire.mjs'

/**
 * Splits a byte stream into packets: `onPacket(type, flags, body)`, `body`
 * valid only during the call. Chunks of an incomplete packet are kept as a
 * list and joined once, when the whole packet is there.
 */
export class StreamParser {
  #pending = []
  #pendingBytes = 0
  /** Bytes the pending packet needs in all (0: its header is not complete yet). */
  #need = 0

  constructor(onPacket) {
    this.onPacket = onPacket
  }

  push(chunk) {
    let buf = chunk
    if (this.#pendingBytes > 0) {
      this.#pending.push(chunk)
      this.#pendingBytes += chunk.length
      if (this.#need > 0 && this.#pendingBytes < this.#need) return
      buf = Buffer.concat(this.#pending, this.#pendingBytes)
      this.#pending = []
      this.#pendingBytes = 0
      this.#need = 0
    }
    let at = 0
    while (buf.length - at >= 2) {
      let length = 0
      let multiplier = 1
      let i = at + 1
      let complete = false
      for (; i < buf.length && i < at + 5; i++) {
        length += (buf[i] & 0x7f) * multiplier
        multiplier *= 128
        if ((buf[i] & 0x80) === 0) {
          complete = true
          i++
          break
        }
      }
      if (!complete) {
        if (i >= at + 5) throw new Error('Expected an MQTT remaining length of at most 4 bytes')
        break
      }
      if (buf.length - i < length) {
        this.#need = i - at + length
        break
      }
      this.onPacket(buf[at] >> 4, buf[at] & 0x0f, buf.subarray(i, i + length))
      at = i + length
    }
    if (at < buf.length) {
      this.#pending = [buf.subarray(at)]
      this.#pendingBytes = buf.length - at
    }
  }
}

/** A TCP socket from `localAddress` (a loopback address) to 127.0.0.1:`port`; resolves when connected. */
export function openTcp(port, localAddress, timeoutMs = 5_000) {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: '127.0.0.1', port, localAddress })
    const timer = setTimeout(() => fail(new Error(`no TCP connection within ${timeoutMs} ms`)), timeoutMs)
    function fail(err) {
      clearTimeout(timer)
      socket.destroy()
      reject(err)
    }
    socket.once('error', fail)
    socket.once('connect', () => {
      clearTimeout(timer)
      socket.off('error', fail)
      socket.on('error', () => undefined)
      socket.setNoDelay(true)
      resolve(socket)
    })
  })
}

/**
 * Waits for the CONNACK on `socket` after writing `connect` (a CONNECT packet).
 * Resolves with `{ code }` (0: accepted) or `{ closed: true }` when the server
 * closed first, or `{ timeout: true }`; later packets go to `session.handler`.
 */
export function awaitConnack(socket, connect, timeoutMs = 5_000) {
  const session = { socket, handler: null, closed: false }
  const parser = new StreamParser((type, flags, body) => session.handler?.(type, flags, body))
  socket.on('data', (chunk) => {
    try {
      parser.push(chunk)
    } catch {
      socket.destroy()
    }
  })
  socket.once('close', () => {
    session.closed = true
  })
  const started = performance.now()
  return new Promise((resolve) => {
    const timer = setTimeout(() => done({ timeout: true }), timeoutMs)
    const onClose = () => done({ closed: true })
    function done(outcome) {
      clearTimeout(timer)
      socket.off('close', onClose)
      session.handler = null
      resolve({ ...outcome, session, ms: performance.now() - started })
    }
    session.handler = (type, _flags, body) => {
      if (type === CONNACK) done({ code: body[1] })
    }
    socket.once('close', onClose)
    socket.write(connect)
  })
}

/** A device session over plain TCP from `localAddress`: `{ session, code }`, or throws with why not. */
export async function deviceSession(port, localAddress, options, timeoutMs = 5_000) {
  const socket = await openTcp(port, localAddress, timeoutMs)
  const outcome = await awaitConnack(socket, connectPacket(options), timeoutMs)
  if (outcome.code === 0) return outcome.session
  socket.destroy()
  const why = outcome.closed
    ? 'the gateway closed the connection before a CONNACK'
    : outcome.timeout
      ? `no CONNACK within ${timeoutMs} ms`
      : `CONNACK return code ${outcome.code}`
  const err = new Error(why)
  err.outcome = outcome.closed ? 'closed' : outcome.timeout ? 'timeout' : `connack-${outcome.code}`
  throw err
}

function writeRemainingLength(buf, offset, n) {
  let value = n
  do {
    let byte = value % 128
    value = Math.floor(value / 128)
    if (value > 0) byte |= 0x80
    buf[offset++] = byte
  } while (value > 0)
  return offset
}

/** The fixed header of a packet of type byte `first` announcing `remaining` bytes. */
export function fixedHeader(first, remaining) {
  const out = Buffer.alloc(1 + remainingLengthSize(remaining))
  out[0] = first
  writeRemainingLength(out, 1, remaining)
  return out
}

/** A whole QoS 1 PUBLISH of `payload` to `topic` (any size the protocol allows). */
export function publishQos1(topic, packetId, payload) {
  const topicBytes = Buffer.from(topic, 'utf8')
  const remaining = 2 + topicBytes.length + 2 + payload.length
  const head = fixedHeader(0x32, remaining)
  const fields = Buffer.alloc(4 + topicBytes.length)
  fields.writeUInt16BE(topicBytes.length, 0)
  topicBytes.copy(fields, 2)
  fields.writeUInt16BE(packetId, 2 + topicBytes.length)
  return Buffer.concat([head, fields, payload])
}

/** Writes `data` and resolves once it is handed to the kernel (or the socket is gone). */
export function writeAll(socket, data) {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve(false)
    if (socket.write(data)) return resolve(true)
    const done = () => {
      socket.off('drain', done)
      socket.off('close', done)
      resolve(!socket.destroyed)
    }
    socket.once('drain', done)
    socket.once('close', done)
  })
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
