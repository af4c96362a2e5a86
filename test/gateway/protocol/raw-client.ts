import { connect as netConnect, type Socket } from 'node:net'
import mqttPacket from 'mqtt-packet'

/** What a raw client saw of the connection. */
export interface RawOutcome {
  /** Every byte the gateway sent after `mark()` (or from the start). */
  bytes: Buffer
  closed: boolean
  /** ms from `mark()` (or connect) to the close. */
  closedAfterMs: number
}

/**
 * A TCP client that sends exactly the bytes it is given and records every byte
 * the gateway sends back: for the packets no MQTT library will produce.
 */
export class RawClient {
  private readonly chunks: Buffer[] = []
  private markAt = 0
  private markedBytes = 0
  private closedAt = -1
  private readonly parser = mqttPacket.parser({ protocolVersion: 4 })
  readonly packets: mqttPacket.Packet[] = []
  private readonly closedPromise: Promise<void>

  private constructor(readonly socket: Socket) {
    this.markAt = performance.now()
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk)
      this.parser.parse(chunk)
    })
    this.parser.on('packet', (p) => this.packets.push(p))
    // Resets are how the gateway closes without reading the rest: not a test failure.
    socket.on('error', () => undefined)
    this.closedPromise = new Promise((resolve) =>
      socket.on('close', () => {
        this.closedAt = performance.now()
        resolve()
      }),
    )
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = netConnect({ host: '127.0.0.1', port, noDelay: true })
      socket.once('error', reject)
      socket.once('connect', () => {
        socket.off('error', reject)
        resolve(new RawClient(socket))
      })
    })
  }

  /** Connects and authenticates as the password device; resolves after CONNACK 0. */
  static async authenticated(port: number, clientId = 'pass-dev-raw'): Promise<RawClient> {
    const client = await RawClient.connect(port)
    client.send(
      mqttPacket.generate({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 4,
        clientId,
        clean: true,
        keepalive: 60,
        username: 'pass-dev',
        password: Buffer.from('correct horse battery staple'),
      }),
    )
    const connack = await client.waitFor('connack')
    if ((connack as mqttPacket.IConnackPacket).returnCode !== 0) throw new Error('CONNACK not 0')
    return client
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes)
  }

  /** From now on, `outcome()` reports only what comes after. */
  mark(): void {
    this.markAt = performance.now()
    this.markedBytes = this.chunks.reduce((n, c) => n + c.length, 0)
  }

  async waitFor(cmd: string, timeoutMs = 5000): Promise<mqttPacket.Packet> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const found = this.packets.find((p) => p.cmd === cmd)
      if (found) return found
      if (Date.now() > deadline || this.closedAt >= 0) throw new Error(`no ${cmd} within ${timeoutMs} ms`)
      await new Promise((r) => setTimeout(r, 10))
    }
  }

  /** Waits (bounded) for the gateway to close the connection. */
  async outcome(timeoutMs = 5000): Promise<RawOutcome> {
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      this.closedPromise,
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs)
      }),
    ])
    clearTimeout(timer)
    return {
      bytes: Buffer.concat(this.chunks).subarray(this.markedBytes),
      closed: this.closedAt >= 0,
      closedAfterMs: this.closedAt >= 0 ? this.closedAt - this.markAt : -1,
    }
  }

  destroy(): void {
    this.socket.destroy()
  }
}

/** A fixed header (type, flags) with the given remaining length, then the body. */
export function packet(type: number, flags: number, body: Buffer | number[]): Buffer {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body)
  return Buffer.concat([Buffer.from([(type << 4) | flags]), remainingLength(b.length), b])
}

export function remainingLength(n: number): Buffer {
  const out: number[] = []
  do {
    let byte = n % 128
    n = Math.floor(n / 128)
    if (n > 0) byte |= 0x80
    out.push(byte)
  } while (n > 0)
  return Buffer.from(out)
}

/** An MQTT string: two length bytes, then the bytes. */
export function str(s: string | Buffer | number[]): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : Buffer.isBuffer(s) ? s : Buffer.from(s)
  const len = Buffer.alloc(2)
  len.writeUInt16BE(b.length)
  return Buffer.concat([len, b])
}

export const u16 = (n: number) => {
  const b = Buffer.alloc(2)
  b.writeUInt16BE(n)
  return b
}
