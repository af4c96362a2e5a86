import { timingSafeEqual, X509Certificate } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import type { SecureContextOptions, TLSSocket } from 'node:tls'
import { createSecureContext, createServer } from 'node:tls'
import type { ListenerConfig } from '../../config/index.js'
import { GatewayError } from '../errors.js'
import { enforceHandshakeDeadline, nodeHandshakeTimeout } from './handshake-deadline.js'
import {
  admittingServer,
  type CertificateReload,
  closeServer,
  countConnections,
  type Listener,
  type ListenerContext,
  listen,
} from './listener.js'

type TlsConfig = Extract<ListenerConfig, { type: 'tls' }>

/** The listener's certificate, key and CA, as read from their files. */
export interface Material {
  cert: Buffer
  key: Buffer
  ca: Buffer
}

async function readMaterial(config: TlsConfig): Promise<Material> {
  const [cert, key, ca] = await Promise.all([
    readFile(config.certFile),
    readFile(config.keyFile),
    readFile(config.caFile),
  ])
  return { cert, key, ca }
}

/** The private key compared in constant time (as every secret is), the public parts as they are. */
const sameMaterial = (a: Material, b: Material) =>
  a.cert.equals(b.cert) && a.ca.equals(b.ca) && a.key.length === b.key.length && timingSafeEqual(a.key, b.key)

/**
 * The serial and end of validity of the certificate in `material`, after checking that it is valid
 * now, that the key is its key and that the set makes a TLS context (the CA parses): a set that
 * fails any of these is refused with the reason, never served.
 */
export function checkMaterial(name: string, config: TlsConfig, material: Material, now = Date.now()) {
  let cert: X509Certificate
  try {
    cert = new X509Certificate(material.cert)
    // OpenSSL skips what is not a certificate in a CA file: a file without one would refuse every device.
    new X509Certificate(material.ca)
    createSecureContext(contextOptions(config, material))
  } catch (err) {
    throw new GatewayError(
      'GW_ERR_LISTENER_CERTIFICATE',
      `listener ${name}: the files ${config.certFile}, ${config.keyFile} and ${config.caFile} do not make a working TLS certificate: ${(err as Error).message}`,
      { cause: err },
    )
  }
  const notBefore = Date.parse(cert.validFrom)
  const notAfter = Date.parse(cert.validTo)
  if (!(now >= notBefore && now <= notAfter)) {
    throw new GatewayError(
      'GW_ERR_LISTENER_CERTIFICATE',
      `listener ${name}: the certificate in ${config.certFile} is valid from ${new Date(notBefore).toISOString()} to ${new Date(notAfter).toISOString()}, not now`,
    )
  }
  return describe(cert)
}

const describe = (cert: X509Certificate) => ({
  serial: cert.serialNumber,
  notAfter: new Date(Date.parse(cert.validTo)).toISOString(),
})

function contextOptions(config: TlsConfig, material: Material): SecureContextOptions {
  return { minVersion: config.minVersion, cert: material.cert, key: material.key, ca: material.ca }
}

/**
 * TLS with client certificates: a device proves itself with a certificate
 * signed by the configured CA; its subject common name names the device.
 * `reloadCertificates` (on reload) swaps in new certificate, key and CA files
 * for new handshakes, without closing a connection.
 */
export async function startTlsListener(config: TlsConfig, context: ListenerContext): Promise<Listener> {
  const name = config.name ?? `tls:${config.port}`
  let material = await readMaterial(config)
  const server = createServer({
    ...contextOptions(config, material),
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
    async reloadCertificates(): Promise<CertificateReload> {
      const next = await readMaterial(config)
      if (sameMaterial(next, material)) {
        return { listener: name, changed: false, ...describe(new X509Certificate(material.cert)) }
      }
      const info = checkMaterial(name, config, next)
      server.setSecureContext(contextOptions(config, next))
      material = next
      context.logger.info(
        { listener: name, serial: info.serial, notAfter: info.notAfter },
        `listener ${name}: new handshakes get the certificate with serial ${info.serial} (valid until ${info.notAfter}); open connections keep theirs`,
      )
      return { listener: name, changed: true, ...info }
    },
    close: () => closeServer(tcp),
  }
}
