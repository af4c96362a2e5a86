// The container lab's published ports (docker-compose.yml, service `lan-ports`): a TCP forwarder on
// the lan network alone, from each port given to the same port of the gateway.
//
// Why not publish the ports on the gateway itself: podman's CNI backend (Debian 12's podman 4.3)
// publishes a container's ports on each of its networks, one DNAT rule per network, and the first
// rule wins in an order that changes from run to run. The gateway is also on `wan`, which is
// internal (no address on the host), so about one lab in five sent the host's connections to an
// address the host cannot reach. This container is on `lan` only.
//
//   node forward.mjs HOST PORT [PORT]...
// TLS-PSK and MQTT pass through unchanged; the gateway sees this container's address as the peer's.
import { connect, createServer } from 'node:net'

const [host, ...ports] = process.argv.slice(2)
if (!host || ports.length === 0 || ports.some((p) => !/^\d{1,5}$/.test(p))) {
  console.error('usage: node forward.mjs HOST PORT [PORT]...')
  process.exit(2)
}
for (const port of ports.map(Number)) {
  const server = createServer((client) => {
    const upstream = connect({ host, port })
    // Either side closing or failing ends both; nothing is kept.
    const end = () => {
      client.destroy()
      upstream.destroy()
    }
    client.on('error', end).on('close', end)
    upstream.on('error', end).on('close', end)
    client.pipe(upstream)
    upstream.pipe(client)
  })
  server.on('error', (err) => {
    console.error(`forward.mjs: port ${port}: ${err.message}`)
    process.exit(1)
  })
  server.listen(port, () => console.log(`forward.mjs: ${port} -> ${host}:${port}`))
}
