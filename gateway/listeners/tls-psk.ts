import type { TLSSocket } from 'node:tls'
import { createServer } from 'node:tls'
import type { ListenerConfig } from '../../config/index.js'
import { enforceHandshakeDeadline, nodeHandshakeTimeout } from './handshake-deadline.js'
import {
  admittingServer,
  closeServer,
  countConnections,
  type Listener,
  type ListenerContext,
  listen,
} from './listener.js'

type TlsPskConfig = Extract<ListenerConfig, { type: 'tls-psk' }>

/**
 * Cipher suites offered to PSK clients. TLS 1.2: PSK with AEAD only (no CBC, no
 * RC4). TLS 1.3 suites are negotiated separately by OpenSSL; Node feeds the same
 * callback through OpenSSL's TLS 1.2 compatibility path, which needs a SHA-256 suite.
 */
export const PSK_CIPHERS = [
  'ECDHE-PSK-CHACHA20-POLY1305',
  'PSK-AES128-GCM-SHA256',
  'PSK-AES256-GCM-SHA384',
  'PSK-CHACHA20-POLY1305',
  'TLS_AES_128_GCM_SHA256',
  'TLS_CHACHA20_POLY1305_SHA256',
].join(':')

/**
 * TLS-PSK: the device proves itself with a pre-shared key during the handshake.
 * An unknown identity or a wrong key fails the handshake; nothing reaches MQTT.
 */
export async function startTlsPskListener(config: TlsPskConfig, context: ListenerContext): Promise<Listener> {
  const name = config.name ?? `tls-psk:${config.port}`
  const { access, security, logger } = context
  const claimed = new WeakMap<TLSSocket, string>()
  const unknown = new WeakSet<TLSSocket>()

  const server = createServer({
    minVersion: config.minVersion,
    maxVersion: config.maxVersion,
    ciphers: PSK_CIPHERS,
    handshakeTimeout: nodeHandshakeTimeout(context.handshakeMs),
    ...(config.identityHint !== undefined && { pskIdentityHint: config.identityHint }),
    pskCallback: (socket, identity) => {
      // A PSK handshake proves a key no one can guess: it is never locked out (docs/policies.md#lockout).
      const key = access.registry.pskKey(identity)
      if (!key) {
        access.lockout.fail({ kind: 'psk', identity, address: socket.remoteAddress ?? 'unknown' })
        const fields = {
          pskIdentity: identity.slice(0, 128),
          listener: name,
          remoteAddress: socket.remoteAddress,
        }
        if (access.registry.pskRetired(identity)) {
          const device = access.registry.pskOwner(identity)?.id
          security.report(
            'psk_retired_identity',
            { ...fields, ...(device !== undefined && { device }) },
            'TLS-PSK handshake refused: this PSK identity was replaced and its overlap has ended',
          )
        } else
          security.report('psk_unknown_identity', fields, 'TLS-PSK handshake refused: unknown PSK identity')
        unknown.add(socket)
        return null
      }
      claimed.set(socket, identity)
      return key
    },
  })

  server.on('secureConnection', (socket: TLSSocket) => {
    socket.setNoDelay(true)
    const pskIdentity = claimed.get(socket)
    context.accept(socket, {
      listener: name,
      remoteAddress: socket.remoteAddress ?? 'unknown',
      ...(pskIdentity !== undefined && { pskIdentity }),
    })
  })

  enforceHandshakeDeadline(server, context.handshakeMs, (remoteAddress) =>
    security.report(
      'tls_handshake_failed',
      { listener: name, remoteAddress, reason: 'ERR_TLS_HANDSHAKE_TIMEOUT' },
      `TLS-PSK handshake not finished within ${context.handshakeMs} ms: connection closed`,
    ),
  )

  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    // Node leaves a socket whose handshake failed or timed out open: close it.
    socket.destroy()
    // An unknown identity was reported by the callback already; what OpenSSL says next adds nothing.
    if (unknown.has(socket)) return
    const pskIdentity = claimed.get(socket)
    const device = pskIdentity ? access.registry.byPsk(pskIdentity)?.id : undefined
    if (pskIdentity)
      access.lockout.fail({ kind: 'psk', identity: pskIdentity, address: socket.remoteAddress ?? 'unknown' })
    security.report(
      'tls_handshake_failed',
      {
        ...(device !== undefined && { device }),
        ...(pskIdentity !== undefined && { pskIdentity }),
        listener: name,
        remoteAddress: socket.remoteAddress,
        reason: err.code ?? err.message,
      },
      pskIdentity
        ? 'TLS-PSK handshake failed: the device presented a known identity with a wrong key'
        : `TLS-PSK handshake failed: ${err.message}`,
    )
  })

  // The TLS server does not listen itself: it is handed the connections the admission lets in.
  const tcp = admittingServer(context, name, (socket) => server.emit('connection', socket))
  const port = await listen(tcp, name, config.host, config.port)
  logger.info({ listener: name, host: config.host, port }, 'listening (TLS-PSK)')
  return {
    name,
    type: 'tls-psk',
    host: config.host,
    port,
    connections: () => countConnections(tcp),
    close: () => closeServer(tcp),
  }
}
