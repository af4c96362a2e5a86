import type { ListenerConfig } from '../../config/index.js'
import {
  admittingServer,
  closeServer,
  countConnections,
  type Listener,
  type ListenerContext,
  listen,
} from './listener.js'

type TcpConfig = Extract<ListenerConfig, { type: 'tcp' }>

/** Plain TCP: for devices that cannot run TLS and protect their payloads themselves. */
export async function startTcpListener(config: TcpConfig, context: ListenerContext): Promise<Listener> {
  const name = config.name ?? `tcp:${config.port}`
  const server = admittingServer(context, name, (socket) => {
    context.accept(socket, { listener: name, remoteAddress: socket.remoteAddress ?? 'unknown' })
  })
  const port = await listen(server, name, config.host, config.port)
  context.logger.info({ listener: name, host: config.host, port }, 'listening (plain TCP)')
  return {
    name,
    type: 'tcp',
    host: config.host,
    port,
    connections: () => countConnections(server),
    close: () => closeServer(server),
  }
}
