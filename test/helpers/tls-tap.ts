import { X509Certificate } from 'node:crypto'
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net'

/** One connection through the tap: the serial of the client certificate it presented, if any yet. */
export interface TappedConnection {
  at: number
  serial: string | null
}

const HANDSHAKE = 22
const CHANGE_CIPHER_SPEC = 20
const CERTIFICATE = 11
/** A client's first flight is small; more than this and the tap stops looking. */
const MAX_HANDSHAKE_BYTES = 256 * 1024

/**
 * Reads the client's TLS 1.2 handshake as it goes by and returns the serial of the first
 * certificate of its Certificate message. TLS 1.2 sends the client certificate in the clear
 * (TLS 1.3 encrypts it); undefined until the message has gone by, null once the client changed
 * cipher spec without one.
 */
class ClientCertificateReader {
  private records = Buffer.alloc(0)
  private handshake = Buffer.alloc(0)
  done = false
  serial: string | null | undefined

  feed(chunk: Buffer): void {
    if (this.done) return
    this.records = Buffer.concat([this.records, chunk])
    while (this.records.length >= 5 && !this.done) {
      const type = this.records[0] as number
      const length = this.records.readUInt16BE(3)
      if (this.records.length < 5 + length) return
      const fragment = this.records.subarray(5, 5 + length)
      this.records = this.records.subarray(5 + length)
      if (type === CHANGE_CIPHER_SPEC) {
        this.finish(null)
      } else if (type === HANDSHAKE) {
        this.handshake = Buffer.concat([this.handshake, fragment])
        this.readMessages()
      }
      if (this.handshake.length > MAX_HANDSHAKE_BYTES) this.finish(null)
    }
  }

  private readMessages(): void {
    while (this.handshake.length >= 4 && !this.done) {
      const type = this.handshake[0] as number
      const length = this.handshake.readUIntBE(1, 3)
      if (this.handshake.length < 4 + length) return
      const body = this.handshake.subarray(4, 4 + length)
      this.handshake = this.handshake.subarray(4 + length)
      if (type !== CERTIFICATE) continue
      if (body.length < 6 || body.readUIntBE(0, 3) === 0) {
        this.finish(null)
        return
      }
      const first = body.readUIntBE(3, 3)
      this.finish(new X509Certificate(body.subarray(6, 6 + first)).serialNumber)
      return
    }
  }

  private finish(serial: string | null): void {
    this.done = true
    this.serial = serial
    this.records = Buffer.alloc(0)
    this.handshake = Buffer.alloc(0)
  }
}

/**
 * A TCP pass-through in front of a TLS broker on loopback that records, for each connection, the
 * serial of the client certificate presented to the broker: what the broker saw, read off the
 * wire at its door. The clients must speak TLS 1.2 (e.g. NODE_OPTIONS=--tls-max-v1.2); the broker
 * does the TLS itself, certificate checks and all.
 */
export class TlsTap {
  readonly connections: TappedConnection[] = []
  private readonly sockets = new Set<Socket>()
  /** When set, the next connection's bytes are held this long before they go on (a slow network). */
  holdNextMs = 0

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(upstreamPort: number, host = '127.0.0.1'): Promise<TlsTap> {
    let tap: TlsTap | undefined
    const server = createServer((client) => {
      const entry: TappedConnection = { at: Date.now(), serial: null }
      tap?.connections.push(entry)
      const reader = new ClientCertificateReader()
      const holdUntil = Date.now() + (tap?.holdNextMs ?? 0)
      if (tap) tap.holdNextMs = 0
      const upstream = tcpConnect(upstreamPort, host)
      for (const s of [client, upstream]) {
        tap?.sockets.add(s)
        s.on('close', () => tap?.sockets.delete(s))
        s.on('error', () => {
          client.destroy()
          upstream.destroy()
        })
      }
      client.on('data', (chunk: Buffer) => {
        reader.feed(chunk)
        if (reader.serial) entry.serial = reader.serial
        const wait = holdUntil - Date.now()
        if (wait > 0) setTimeout(() => upstream.write(chunk), wait)
        else upstream.write(chunk)
      })
      upstream.pipe(client)
      client.on('end', () => upstream.end())
      upstream.on('end', () => client.end())
    })
    await new Promise<void>((resolve) => server.listen(0, host, resolve))
    const address = server.address()
    if (address === null || typeof address === 'string') throw new Error('the tap has no port')
    tap = new TlsTap(server, address.port)
    return tap
  }

  /** Serials of the connections that presented a certificate, in order, repeats collapsed. */
  serials(): string[] {
    const out: string[] = []
    for (const c of this.connections) if (c.serial && out.at(-1) !== c.serial) out.push(c.serial)
    return out
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}
