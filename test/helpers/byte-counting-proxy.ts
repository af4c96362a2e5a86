import { connect, createServer, type Server, type Socket } from 'node:net'

export interface ByteCounts {
  /** Bytes from the client to the server. */
  up: number
  /** Bytes from the server to the client. */
  down: number
}

/**
 * A TCP relay on 127.0.0.1 that counts every byte in each direction: what a
 * device would put on its radio, TLS records and all.
 */
export class ByteCountingProxy {
  readonly counts: ByteCounts = { up: 0, down: 0 }
  private readonly sockets = new Set<Socket>()

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number): Promise<ByteCountingProxy> {
    let proxy: ByteCountingProxy | undefined
    const server = createServer((client) => {
      const upstream = connect({ host: '127.0.0.1', port: targetPort })
      proxy!.sockets.add(client).add(upstream)
      client.on('data', (chunk: Buffer) => {
        proxy!.counts.up += chunk.length
        upstream.write(chunk)
      })
      upstream.on('data', (chunk: Buffer) => {
        proxy!.counts.down += chunk.length
        client.write(chunk)
      })
      const closeBoth = () => {
        client.destroy()
        upstream.destroy()
      }
      client.on('close', closeBoth).on('error', closeBoth)
      upstream.on('close', closeBoth).on('error', closeBoth)
    })
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject)
      server.listen({ host: '127.0.0.1', port: 0 }, () => {
        const address = server.address()
        resolve(typeof address === 'object' && address ? address.port : 0)
      })
    })
    proxy = new ByteCountingProxy(server, port)
    return proxy
  }

  reset(): void {
    this.counts.up = 0
    this.counts.down = 0
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy()
    return new Promise((resolve) => this.server.close(() => resolve()))
  }
}
