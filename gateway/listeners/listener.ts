import { createServer, type Server, type Socket } from 'node:net'
import type { Aedes } from 'aedes'
import type { Logger } from '../../core/logger.js'
import type { SecurityEvents } from '../../core/security-events.js'
import type { AccessControl } from '../access-control.js'
import { GatewayError } from '../errors.js'
import type { Accept } from '../protocol/index.js'
import type { Admission } from './admission.js'

export interface ListenerContext {
  broker: Aedes
  access: AccessControl
  logger: Logger
  security: SecurityEvents
  /** Hands an established connection to the broker, behind the protocol guard. */
  accept: Accept
  /** `lan.timeouts.handshakeMs`: a TLS handshake not finished by then is closed. */
  handshakeMs: number
  /** `lan.pendingConnections`: connections not yet authenticated, per address and in all. */
  admission: Admission
}

/** A running listener: one transport, one address, feeding the broker. */
export interface Listener {
  readonly name: string
  readonly type: string
  readonly host: string
  readonly port: number
  /** Connections open on this listener, TLS handshakes in progress included. */
  connections(): Promise<number>
  /**
   * Listeners with a certificate (`tls`): read the certificate, key and CA files again and, when
   * they changed, serve new handshakes with them; connections already open keep theirs. Throws,
   * changing nothing, when the new files do not make a working set.
   */
  reloadCertificates?(): Promise<CertificateReload>
  close(): Promise<void>
}

/** What a listener serves after a certificate reload. */
export interface CertificateReload {
  listener: string
  /** Whether the files differed from those in use (false: nothing was swapped). */
  changed: boolean
  /** The serial number (hex) and the end of validity (ISO 8601) of the certificate now served. */
  serial: string
  notAfter: string
}

/**
 * A TCP server that takes an admission slot for each connection it accepts
 * (given back when the connection closes, or earlier by the broker once the
 * client is authenticated) and closes at once, before any TLS state exists,
 * a connection past `lan.pendingConnections`, reporting `connection_refused`.
 */
export function admittingServer(
  context: ListenerContext,
  name: string,
  handle: (socket: Socket) => void,
): Server {
  return createServer({ noDelay: true }, (socket) => {
    const address = socket.remoteAddress ?? 'unknown'
    const port = socket.remotePort
    const refused = context.admission.admit(address, port)
    if (refused) {
      // A reset, not a FIN: nothing of this connection stays in the kernel (no TIME_WAIT).
      socket.resetAndDestroy()
      context.security.report(
        'connection_refused',
        { listener: name, remoteAddress: address, reason: refused },
        refused === 'pending_per_address'
          ? 'connection closed on accept: too many unauthenticated connections from this address (lan.pendingConnections.perAddress)'
          : 'connection closed on accept: too many unauthenticated connections (lan.pendingConnections.total)',
      )
      return
    }
    socket.once('close', () => context.admission.release(address, port))
    handle(socket)
  })
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
