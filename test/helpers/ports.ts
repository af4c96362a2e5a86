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
