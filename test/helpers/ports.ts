import { createServer } from 'node:net'

/**
 * A TCP port that was free a moment ago on `host`: listens on port 0, reads the
 * port the kernel chose, closes. Someone else may take it before you bind it, so
 * callers that can should retry with a new port when binding fails.
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', reject)
    server.listen({ port: 0, host, exclusive: true }, () => {
      const address = server.address()
      if (address === null || typeof address === 'string') {
        server.close()
        reject(new Error(`Expected a TCP address from listen on ${host}:0, got ${String(address)}`))
        return
      }
      server.close((err) => (err ? reject(err) : resolve(address.port)))
    })
  })
}

/** Whether `port` on 127.0.0.1 could be listened on a moment ago. */
export const canListen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen({ host: '127.0.0.1', port }, () => server.close(() => resolve(true)))
  })

/**
 * A base port on 127.0.0.1 with the two after it free too, a moment ago (`edge-gateway lab`
 * listens on three in a row). As with freePort, a caller retries on other ports when a bind fails.
 */
export async function threeFreePorts(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 40_000)
    if ((await canListen(base)) && (await canListen(base + 1)) && (await canListen(base + 2))) return base
  }
  throw new Error('no three consecutive free ports on 127.0.0.1')
}
