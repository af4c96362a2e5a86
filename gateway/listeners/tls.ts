import { readFile } from 'node:fs/promises'
import type { TLSSocket } from 'node:tls'
import { createServer } from 'node:tls'
import type { ListenerConfig } from '../../config/index.js'
import { setTransport } from '../connection-context.js'
import { closeServer, type Listener, type ListenerContext, listen } from './listener.js'

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
  })
  server.on('secureConnection', (socket: TLSSocket) => {
    socket.setNoDelay(true)
    const subject = socket.getPeerCertificate().subject as Record<string, string | string[]> | undefined
    const cn = subject?.CN
    const commonName = Array.isArray(cn) ? cn[0] : cn
    setTransport(socket, {
      listener: name,
      remoteAddress: socket.remoteAddress ?? 'unknown',
      ...(commonName !== undefined && { certificateCommonName: commonName }),
    })
    context.broker.handle(socket)
  })
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    context.security.report(
      'tls_handshake_failed',
      { listener: name, remoteAddress: socket.remoteAddress, reason: err.code ?? err.message },
      `TLS handshake failed: ${err.message.split('\n')[0]}`,
    )
  })
  const port = await listen(server, name, config.host, config.port)
  context.logger.info({ listener: name, host: config.host, port }, 'listening (TLS with client certificates)')
  return { name, type: 'tls', host: config.host, port, close: () => closeServer(server) }
}
