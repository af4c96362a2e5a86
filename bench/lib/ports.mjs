import { connect, createServer } from 'node:net'

function listenOnAnyPort() {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', reject)
    server.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => resolve(server))
  })
}

/**
 * `count` distinct TCP ports on 127.0.0.1 that were free a moment ago: all are
 * held open together before any is closed, since a port closed a moment ago is
 * what the kernel may hand out next (two listeners of one edge got the same port).
 */
export async function freePorts(count) {
  const servers = []
  try {
    for (let i = 0; i < count; i++) servers.push(await listenOnAnyPort())
    return servers.map((server) => server.address().port)
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))))
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago (listen on 0, read it, close). */
export async function freePort() {
  const [port] = await freePorts(1)
  return port
}

function accepts(port) {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    const done = (ok) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(500, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}

/** Resolves when 127.0.0.1:`port` accepts TCP connections; rejects after `timeoutMs` or if `gone()`. */
export async function waitForPort(port, { timeoutMs = 10_000, gone = () => false, what = 'server' } = {}) {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (gone()) throw new Error(`${what} exited before listening on 127.0.0.1:${port}`)
    if (await accepts(port)) return
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new Error(`${what} did not listen on 127.0.0.1:${port} within ${timeoutMs} ms`)
}
