import { readFile } from 'node:fs/promises'
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

type TlsConfig = Extract<ListenerConfig, { type: 'tls' }>

/**
 * TLS with client certificates: a device proves itself with a certificate
 * signed by the configured CA; its subject common name names the device.
 */
export async function startTlsListener(config: TlsConfig, context: ListenerContext): Promise<Listener> {
  const name = config.name ?? `tls:${config.port}`
  const server = createServer({
    minVersion: config.minVersion,
    cert: await readFile(config.certFile),
    key: await readFile(config.keyFile),
    ca: await readFile(config.caFile),
    requestCert: true,
    rejectUnauthorized: true,
    handshakeTimeout: nodeHandshakeTimeout(context.handshakeMs),
  })
  server.on('secureConnection', (socket: TLSSocket) => {
    socket.setNoDelay(true)
    const subject = socket.getPeerCertificate().subject as Record<string, string | string[]> | undefined
    const cn = subject?.CN
    const commonName = Array.isArray(cn) ? cn[0] : cn
    context.accept(socket, {
      listener: name,
      remoteAddress: socket.remoteAddress ?? 'unknown',
      ...(commonName !== undefined && { certificateCommonName: commonName }),
    })
  })
  enforceHandshakeDeadline(server, context.handshakeMs, (remoteAddress) =>
    context.security.report(
      'tls_handshake_failed',
      { listener: name, remoteAddress, reason: 'ERR_TLS_HANDSHAKE_TIMEOUT' },
      `TLS handshake not finished within ${context.handshakeMs} ms: connection closed`,
    ),
  )
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    // Node leaves a socket whose handshake failed or timed out open: close it.
    socket.destroy()
    context.security.report(
      'tls_handshake_failed',
      { listener: name, remoteAddress: socket.remoteAddress, reason: err.code ?? err.message },
      `TLS handshake failed: ${err.message.split('\n')[0]}`,
    )
  })
  // The TLS server does not listen itself: it is handed the connections the admission lets in.
  const tcp = admittingServer(context, name, (socket) => server.emit('connection', socket))
  const port = await listen(tcp, name, config.host, config.port)
  context.logger.info({ listener: name, host: config.host, port }, 'listening (TLS with client certificates)')
  return {
    name,
    type: 'tls',
    host: config.host,
    port,
    connections: () => countConnections(tcp),
    close: () => closeServer(tcp),
  }
}
