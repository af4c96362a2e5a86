import type { Server } from 'node:net'
import type { Aedes } from 'aedes'
import type { Logger } from '../../core/logger.js'
import type { SecurityEvents } from '../../core/security-events.js'
import type { AccessControl } from '../access-control.js'
import { GatewayError } from '../errors.js'
import type { Accept } from '../protocol/index.js'

export interface ListenerContext {
  broker: Aedes
  access: AccessControl
  logger: Logger
  security: SecurityEvents
  /** Hands an established connection to the broker, behind the protocol guard. */
  accept: Accept
  /** `lan.timeouts.handshakeMs`: a TLS handshake not finished by then is closed. */
  handshakeMs: number
}

/** A running listener: one transport, one address, feeding the broker. */
export interface Listener {
  readonly name: string
  readonly type: string
  readonly host: string
  readonly port: number
  /** Connections open on this listener, TLS handshakes in progress included. */
  connections(): Promise<number>
  close(): Promise<void>
}

/** Binds a server and resolves with its actual port (for port 0). */
export function listen(server: Server, name: string, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(
        new GatewayError(
          'GW_ERR_LISTEN',
          `listener ${name}: cannot listen on ${host}:${port} (${err.code})`,
          {
            cause: err,
          },
        ),
      )
    }
    server.once('error', onError)
    server.listen({ host, port }, () => {
      server.off('error', onError)
      const address = server.address()
      resolve(typeof address === 'object' && address ? address.port : port)
    })
  })
}

/** Open connections of a server (pending TLS handshakes included). */
export function countConnections(server: Server): Promise<number> {
  return new Promise((resolve, reject) =>
    server.getConnections((err, count) => (err ? reject(err) : resolve(count))),
  )
}

/** Stops accepting and waits until the server is closed; open connections are ended by the broker. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve()
    server.close(() => resolve())
  })
}
