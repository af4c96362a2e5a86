import type { AddressInfo } from 'node:net'
import { connect, createServer, type Server, type TLSSocket } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createCertificateAuthority } from '../../pki/ca.js'
import { issueCertificate } from '../../pki/issue.js'
import type { KeyPairPem } from '../../pki/types.js'

interface ServerSide {
  accepted: Array<{ authorized: boolean; peerCommonName: string | undefined }>
  refused: Array<string | undefined>
}

interface Attempt {
  secureConnect: boolean
  authorized: boolean | undefined
  received: string
  errorCode: string | undefined
}

/** Connects with `client`, reads until the server closes, reports everything observed. */
function attempt(port: number, ca: string, client: Partial<KeyPairPem>, maxVersion: 'TLSv1.2' | 'TLSv1.3') {
  return new Promise<Attempt>((resolve) => {
    const result: Attempt = {
      secureConnect: false,
      authorized: undefined,
      received: '',
      errorCode: undefined,
    }
    const socket = connect({
      host: '127.0.0.1',
      port,
      ca,
      cert: client.certPem,
      key: client.keyPem,
      maxVersion,
      rejectUnauthorized: true,
    })
    socket.setEncoding('utf8')
    socket.on('secureConnect', () => {
      result.secureConnect = true
      result.authorized = socket.authorized
    })
    socket.on('data', (chunk: string) => {
      result.received += chunk
    })
    socket.on('error', (err: NodeJS.ErrnoException) => {
      result.errorCode ??= err.code
    })
    socket.on('close', () => resolve(result))
  })
}

describe('certificates in a real TLS handshake (node:tls, 127.0.0.1)', () => {
  const ca = createCertificateAuthority({ commonName: 'handshake CA' })
  const server = issueCertificate(ca, { commonName: 'cloud-broker', kind: 'server', altNames: ['127.0.0.1'] })
  const client = issueCertificate(ca, { commonName: 'edge-gateway', kind: 'client' })
  const otherCa = createCertificateAuthority({ commonName: 'handshake CA' })
  const foreignClient = issueCertificate(otherCa, { commonName: 'edge-gateway', kind: 'client' })
  const foreignServer = issueCertificate(otherCa, {
    commonName: 'cloud-broker',
    kind: 'server',
    altNames: ['127.0.0.1'],
  })

  const seen: ServerSide = { accepted: [], refused: [] }
  const servers: Server[] = []
  let port: number
  let foreignServerPort: number

  function listen(identity: KeyPairPem): Promise<number> {
    const tlsServer = createServer({
      key: identity.keyPem,
      cert: identity.certPem,
      ca: ca.certPem,
      requestCert: true,
      rejectUnauthorized: true,
    })
    tlsServer.on('secureConnection', (socket: TLSSocket) => {
      const cn = socket.getPeerCertificate().subject?.CN
      seen.accepted.push({
        authorized: socket.authorized,
        peerCommonName: Array.isArray(cn) ? cn.join(',') : cn,
      })
      socket.end('hello from the broker\n')
    })
    tlsServer.on('tlsClientError', (err: NodeJS.ErrnoException) => {
      seen.refused.push(err.code)
    })
    servers.push(tlsServer)
    return new Promise((resolve) => {
      tlsServer.listen(0, '127.0.0.1', () => resolve((tlsServer.address() as AddressInfo).port))
    })
  }

  beforeAll(async () => {
    port = await listen(server)
    foreignServerPort = await listen(foreignServer)
  })
  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
  })

  it.each(['TLSv1.2', 'TLSv1.3'] as const)(
    'accepts the client certificate both ways over %s',
    async (version) => {
      seen.accepted.length = 0
      const result = await attempt(port, ca.certPem, client, version)
      expect(result).toEqual({
        secureConnect: true,
        authorized: true,
        received: 'hello from the broker\n',
        errorCode: undefined,
      })
      expect(seen.accepted).toEqual([{ authorized: true, peerCommonName: 'edge-gateway' }])
    },
  )

  // Node verifies the client certificate after the handshake and drops the
  // connection without an alert: the client sees a reset (TLS 1.2) or, having
  // finished its side first (TLS 1.3), a close before any data.
  it.each([
    ['TLSv1.2', { secureConnect: false, authorized: undefined, received: '', errorCode: 'ECONNRESET' }],
    ['TLSv1.3', { secureConnect: true, authorized: true, received: '', errorCode: undefined }],
  ] as const)('refuses a client certificate from another CA over %s', async (version, expected) => {
    seen.accepted.length = 0
    seen.refused.length = 0
    const result = await attempt(port, ca.certPem, foreignClient, version)
    expect(result).toEqual(expected)
    expect(seen.accepted).toEqual([])
    expect(seen.refused).toEqual(['ECONNRESET'])
  })

  it('refuses the foreign client certificate because its signature does not verify', async () => {
    const inspecting = createServer({
      key: server.keyPem,
      cert: server.certPem,
      ca: ca.certPem,
      requestCert: true,
      // Only to read the reason; every other server here rejects.
      rejectUnauthorized: false,
    })
    const reasons: Array<string | Error | null> = []
    inspecting.on('secureConnection', (socket: TLSSocket) => {
      reasons.push(socket.authorizationError)
      socket.end()
    })
    servers.push(inspecting)
    const inspectingPort = await new Promise<number>((resolve) => {
      inspecting.listen(0, '127.0.0.1', () => resolve((inspecting.address() as AddressInfo).port))
    })
    await attempt(inspectingPort, ca.certPem, foreignClient, 'TLSv1.3')
    await attempt(inspectingPort, ca.certPem, client, 'TLSv1.3')
    expect(reasons).toEqual(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', null])
  })

  it('refuses a client with no certificate', async () => {
    seen.accepted.length = 0
    seen.refused.length = 0
    const result = await attempt(port, ca.certPem, {}, 'TLSv1.3')
    expect(result.received).toBe('')
    expect(seen.accepted).toEqual([])
    expect(seen.refused).toEqual(['ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE'])
  })

  it('makes the client refuse a server certificate from another CA', async () => {
    seen.accepted.length = 0
    const result = await attempt(foreignServerPort, ca.certPem, client, 'TLSv1.3')
    expect(result).toEqual({
      secureConnect: false,
      authorized: undefined,
      received: '',
      errorCode: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    })
    expect(seen.accepted).toEqual([])
  })
})
