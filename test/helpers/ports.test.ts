import { createServer } from 'node:net'
import { describe, expect, it } from 'vitest'
import { freePort, threeFreePorts } from './ports.js'

describe('freePort', () => {
  it('returns a port that can be bound on 127.0.0.1', async () => {
    const port = await freePort()
    expect(port).toBeGreaterThan(0)
    const server = createServer()
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, '127.0.0.1', resolve)
    })
    await new Promise((resolve) => server.close(resolve))
  })
})

describe('threeFreePorts', () => {
  it('returns a base port where it and the two after it can be bound on 127.0.0.1', async () => {
    const base = await threeFreePorts()
    const servers = [base, base + 1, base + 2].map(() => createServer())
    await Promise.all(
      servers.map(
        (server, i) =>
          new Promise<void>((resolve, reject) => {
            server.once('error', reject)
            server.listen(base + i, '127.0.0.1', resolve)
          }),
      ),
    )
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))))
  })
})
