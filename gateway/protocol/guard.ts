import { Duplex } from 'node:stream'
import {
  type FixedHeader,
  HEADER_INCOMPLETE,
  HEADER_MALFORMED,
  readFixedHeader,
} from '../../core/mqtt-fixed-header.js'
import { CONNECT, checkBody, checkHeader, DISCONNECT } from './packet-rules.js'
import { PACKET_TYPE_NAMES, type ProtocolViolation } from './violations.js'

export interface GuardLimits {
  /** Largest packet, fixed header included, from an authenticated client. */
  maxPacketBytes: number
  /** Largest packet before the client is authenticated: the CONNECT with its Will. */
  maxConnectBytes: number
  /**
   * Bytes the gateway sent the client that may wait unread in its socket: past this the client is
   * a slow consumer and the connection is closed. Below it writes never wait, so the broker's
   * delivery to everyone else never waits on a client that does not read.
   */
  maxOutboundBytes: number
}

/** How long more than maxOutboundBytes may wait unread before the client is a slow consumer. */
const SLOW_CONSUMER_MS = 1000
/** Past this many times maxOutboundBytes waiting unread, the client is one at once. */
const SLOW_CONSUMER_HARD = 4

/** CONNACK, return code 1: unacceptable protocol level (MQTT-3.1.2-2), in the 3.1.1 format. */
const CONNACK_UNSUPPORTED_LEVEL = Buffer.from([0x20, 0x02, 0x00, 0x01])

/**
 * - connect: waiting for the first packet, which must be a CONNECT.
 * - authenticating: the CONNECT went to the broker; what follows is held, unread, until `authenticated()`.
 * - open: authenticated; packets up to maxPacketBytes.
 * - ignoring: a DISCONNECT went to the broker; nothing after it is read.
 * - closed: a violation closed the connection.
 */
type Phase = 'connect' | 'authenticating' | 'open' | 'ignoring' | 'closed'

/**
 * A validating layer between a client's socket and the broker: the broker reads
 * and writes this stream as if it were the socket. It decodes each fixed header
 * as soon as its (at most 5) bytes arrive and refuses a packet over the size
 * limit before buffering any of its body; it checks every complete packet
 * against the MQTT 3.1.1 rules that require closing the connection, and closes
 * it (without a reply, and without reading further) on the first breach.
 *
 * Cost on the hot path: the bytes of whole packets in a received chunk are
 * passed on as one view of that chunk (no copy); only a packet split across
 * chunks is copied (its own bytes, once) when its last byte arrives. Per packet it reads the
 * fixed header, the topic and the packet identifier; never a PUBLISH payload.
 */
export class ProtocolGuard extends Duplex {
  private phase: Phase = 'connect'
  /** Bytes received and not yet passed on: a packet still arriving, or held during authentication. */
  private parts: Buffer[] = []
  private partsLen = 0
  /** Size of the packet at the head of `parts` once its header is known; -1 before. */
  private need = -1
  private readonly header: FixedHeader = { type: 0, flags: 0, remaining: 0, headerBytes: 0 }
  private socketPaused = false
  private endPending = false
  /** Packets of this connection the broker holds (the device's rate): nothing more is read meanwhile. */
  private held = 0
  /** Set while more than maxOutboundBytes wait unread: the check that follows (checkOutbound). */
  private slowTimer: NodeJS.Timeout | undefined

  constructor(
    readonly socket: Duplex,
    private readonly limits: GuardLimits,
    private readonly onViolation: (violation: ProtocolViolation) => void,
  ) {
    super({ allowHalfOpen: false })
    socket.on('data', this.onData)
    socket.on('end', this.onEnd)
    socket.on('error', (err: Error) => this.destroy(err))
    socket.on('close', () => this.destroy())
  }

  /**
   * The broker holds a packet of this connection for a while (lan.deviceRate): read nothing more
   * from the socket until `release`. The broker reads whatever this stream has buffered at every
   * 'readable', held packets or not (aedes), so without this a device of large packets was read
   * at the socket's pace while its packets waited in memory for their turn.
   */
  hold(): void {
    this.held++
    this.pauseSocket()
  }

  /** One held packet went on: reading resumes once none is held. */
  release(): void {
    if (this.held === 0) return
    this.held--
    if (this.held === 0 && this.phase === 'open' && !this.readableNeedsDrain()) this.resumeSocket()
  }

  /** The broker accepted the CONNECT: release what was held and allow packets up to maxPacketBytes. */
  authenticated(): void {
    if (this.phase !== 'authenticating') return
    this.phase = 'open'
    if (this.partsLen > 0) {
      const held = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.partsLen)
      this.parts = []
      this.partsLen = 0
      this.process(held)
    }
    // process() may have closed the connection: read the phase afresh.
    const phase = this.phase as Phase
    if (this.endPending && phase !== 'closed') this.push(null)
    else if (phase === 'open' && this.held === 0 && !this.readableNeedsDrain()) this.resumeSocket()
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.phase === 'closed' || this.phase === 'ignoring') return
    if (this.partsLen === 0 && this.phase !== 'authenticating') {
      this.process(chunk)
      return
    }
    this.parts.push(chunk)
    this.partsLen += chunk.length
    if (this.phase === 'authenticating') {
      this.pauseSocket()
      return
    }
    if (this.need === -1) {
      const head =
        this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, Math.min(this.partsLen, 5))
      const n = readFixedHeader(head, 0, this.header)
      if (n === HEADER_INCOMPLETE) return
      const refused = n === HEADER_MALFORMED ? malformedHeader() : this.checkFixedHeader()
      if (refused) {
        this.refuse(refused)
        return
      }
      this.need = n + this.header.remaining
    }
    if (this.partsLen < this.need) return
    // The packet is complete: copy exactly its bytes, once; what follows it stays a view.
    const packet = Buffer.allocUnsafe(this.need)
    const rest: Buffer[] = []
    let filled = 0
    for (const part of this.parts) {
      const take = Math.min(part.length, this.need - filled)
      if (take > 0) part.copy(packet, filled, 0, take)
      filled += take
      if (take < part.length) rest.push(take === 0 ? part : part.subarray(take))
    }
    this.parts = []
    this.partsLen = 0
    this.need = -1
    this.process(packet)
    if (rest.length > 0) this.process(rest.length === 1 ? rest[0]! : Buffer.concat(rest))
  }

  private readonly onEnd = (): void => {
    if (this.phase === 'authenticating' && this.partsLen > 0) this.endPending = true
    else this.push(null)
  }

  /** Checks and passes on the packets of `buf`, which starts at a packet boundary. */
  private process(buf: Buffer): void {
    const h = this.header
    let offset = 0
    while (offset < buf.length) {
      if (this.phase !== 'connect' && this.phase !== 'open') break
      const n = readFixedHeader(buf, offset, h)
      if (n === HEADER_INCOMPLETE) break
      const refusedHeader = n === HEADER_MALFORMED ? malformedHeader() : this.checkFixedHeader()
      if (refusedHeader) {
        this.refuse(refusedHeader)
        return
      }
      const total = n + h.remaining
      if (offset + total > buf.length) {
        this.need = total
        break
      }
      const refused = checkBody(buf, offset, h)
      if (refused) {
        this.refuse(refused)
        return
      }
      offset += total
      if (h.type === CONNECT) this.phase = 'authenticating'
      else if (h.type === DISCONNECT) this.phase = 'ignoring'
    }
    if (offset > 0) this.forward(offset === buf.length ? buf : buf.subarray(0, offset))
    if (offset < buf.length && this.phase !== 'ignoring' && this.phase !== 'closed') {
      this.parts.push(offset === 0 ? buf : buf.subarray(offset))
      this.partsLen += buf.length - offset
      if (this.phase === 'authenticating') this.pauseSocket()
    }
  }

  /** What the fixed header alone tells: packet type and flags, order, and size. */
  private checkFixedHeader(): ProtocolViolation | null {
    const h = this.header
    const type = PACKET_TYPE_NAMES[h.type]!
    if (this.phase === 'connect' && h.type !== CONNECT)
      return { reason: 'not_connected', detail: 'first packet is not a CONNECT', packetType: type }
    if (this.phase !== 'connect' && h.type === CONNECT)
      return { reason: 'second_connect', detail: 'a second CONNECT', packetType: type }
    const refused = checkHeader(h)
    if (refused) return refused
    const announced = h.headerBytes + h.remaining
    if (this.phase === 'connect') {
      const limit = Math.min(this.limits.maxConnectBytes, this.limits.maxPacketBytes)
      if (announced > limit)
        return {
          reason: 'connect_too_large',
          detail: `${announced} bytes announced before authentication (limit ${limit})`,
          packetType: type,
          announcedBytes: announced,
          limit,
        }
    } else if (announced > this.limits.maxPacketBytes) {
      return {
        reason: 'packet_too_large',
        detail: `${announced} bytes announced (limit ${this.limits.maxPacketBytes})`,
        packetType: type,
        announcedBytes: announced,
        limit: this.limits.maxPacketBytes,
      }
    }
    return null
  }

  private forward(bytes: Buffer): void {
    if (!this.push(bytes)) this.pauseSocket()
  }

  /** Closes the connection without reading further and without a reply (CONNACK 1 for an unsupported level). */
  private refuse(violation: ProtocolViolation): void {
    if (this.phase === 'closed') return
    this.phase = 'closed'
    this.parts = []
    this.partsLen = 0
    this.socket.off('data', this.onData)
    try {
      this.onViolation(violation)
    } finally {
      if (violation.reason === 'unsupported_protocol_level' && !this.socket.destroyed) {
        this.socket.end(CONNACK_UNSUPPORTED_LEVEL, () => this.socket.destroy())
      } else {
        this.socket.destroy()
      }
    }
  }

  private pauseSocket(): void {
    if (this.socketPaused) return
    this.socketPaused = true
    this.socket.pause()
  }

  private resumeSocket(): void {
    if (!this.socketPaused) return
    this.socketPaused = false
    this.socket.resume()
  }

  private readableNeedsDrain(): boolean {
    return this.readableLength >= this.readableHighWaterMark
  }

  override _read(): void {
    if (this.held === 0 && (this.phase === 'connect' || this.phase === 'open')) this.resumeSocket()
  }

  // Writes never wait for the socket to drain: the broker delivers to every client through one
  // emitter with a bounded number of deliveries in progress, and a delivery that waited on a client
  // that does not read held a slot for up to aedes' drainTimeout (60 s), so one such client froze
  // delivery to all. What waits unread is bounded instead (maxOutboundBytes), per connection.
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    // After a refusal the broker may still write for a moment: those bytes go nowhere.
    if (!this.socket.destroyed) {
      this.socket.write(chunk)
      this.checkOutbound()
    }
    done()
  }

  override _writev(
    chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>,
    done: (err?: Error | null) => void,
  ): void {
    if (!this.socket.destroyed) {
      this.socket.cork()
      for (const { chunk } of chunks) this.socket.write(chunk)
      this.socket.uncork()
      this.checkOutbound()
    }
    done()
  }

  /**
   * A socket's writableLength counts what was just written too (a TLS socket writes on the next
   * turn of the event loop, so a burst of deliveries in one turn is all counted): over the limit,
   * the client is a slow consumer only if it still is SLOW_CONSUMER_MS later without having
   * drained, or at once past SLOW_CONSUMER_HARD times the limit (memory outside V8's heap).
   */
  private checkOutbound(): void {
    const waiting = this.socket.writableLength
    const max = this.limits.maxOutboundBytes
    if (waiting <= max || this.phase === 'closed') return
    if (waiting > SLOW_CONSUMER_HARD * max) {
      this.slowConsumer(waiting)
      return
    }
    if (this.slowTimer) return
    const drained = () => {
      clearTimeout(this.slowTimer)
      this.slowTimer = undefined
    }
    this.socket.once('drain', drained)
    this.slowTimer = setTimeout(() => {
      this.slowTimer = undefined
      this.socket.off('drain', drained)
      const still = this.socket.writableLength
      if (still > max && !this.socket.destroyed) this.slowConsumer(still)
    }, SLOW_CONSUMER_MS)
    this.slowTimer.unref()
  }

  private slowConsumer(waiting: number): void {
    if (this.phase === 'closed') return
    this.refuse({
      reason: 'slow_consumer',
      detail: `${waiting} bytes sent to it wait unread (limit ${this.limits.maxOutboundBytes})`,
      packetType: 'none',
      announcedBytes: waiting,
      limit: this.limits.maxOutboundBytes,
    })
  }

  override _final(done: (err?: Error | null) => void): void {
    this.socket.end()
    done()
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    clearTimeout(this.slowTimer)
    this.phase = 'closed'
    this.parts = []
    this.partsLen = 0
    this.socket.destroy()
    done(err)
  }
}

function malformedHeader(): ProtocolViolation {
  return {
    reason: 'malformed_length',
    detail: 'remaining length takes more than 4 bytes',
    packetType: 'unknown',
  }
}
