import { describe, expect, it } from 'vitest'
import type { ListenerConfig } from '../../../config/index.js'
import { checkMaterial } from '../../../gateway/listeners/tls.js'
import { createCertificateAuthority, issueCertificate } from '../../../pki/index.js'

type TlsConfig = Extract<ListenerConfig, { type: 'tls' }>

const CONFIG = {
  type: 'tls',
  name: 'lan-tls',
  host: '127.0.0.1',
  port: 8883,
  minVersion: 'TLSv1.2',
  certFile: '/etc/edge-gateway/lan.pem',
  keyFile: '/etc/edge-gateway/lan.key',
  caFile: '/etc/edge-gateway/ca.pem',
} as TlsConfig

/** What a `tls` listener checks before it serves new certificate files (on reload). */
describe('tls listener: checking a new certificate, key and CA', () => {
  const ca = createCertificateAuthority({ commonName: 'device CA' })
  const server = issueCertificate(ca, { commonName: 'lan', kind: 'server', validDays: 30 })
  const other = issueCertificate(ca, { commonName: 'lan', kind: 'server' })
  const material = (cert: string, key: string, caPem = ca.certPem) => ({
    cert: Buffer.from(cert),
    key: Buffer.from(key),
    ca: Buffer.from(caPem),
  })

  it('takes a matching set valid now, and says what it serves', () => {
    const info = checkMaterial('lan-tls', CONFIG, material(server.certPem, server.keyPem))
    expect(info.serial).toMatch(/^[0-9A-F]+$/)
    expect(Date.parse(info.notAfter)).toBeGreaterThan(Date.now() + 29 * 86_400_000)
  })

  it('refuses a key that is not the certificate key, naming the files', () => {
    expect(() => checkMaterial('lan-tls', CONFIG, material(server.certPem, other.keyPem))).toThrow(
      /listener lan-tls: the files \/etc\/edge-gateway\/lan.pem, \/etc\/edge-gateway\/lan.key and \/etc\/edge-gateway\/ca.pem do not make a working TLS certificate/,
    )
  })

  it('refuses a certificate outside its validity: expired, or not yet valid', () => {
    const later = Date.now() + 31 * 86_400_000
    expect(() => checkMaterial('lan-tls', CONFIG, material(server.certPem, server.keyPem), later)).toThrow(
      /the certificate in \/etc\/edge-gateway\/lan.pem is valid from .* to .*, not now/,
    )
    const earlier = Date.now() - 86_400_000
    expect(() => checkMaterial('lan-tls', CONFIG, material(server.certPem, server.keyPem), earlier)).toThrow(
      /not now/,
    )
  })

  it('refuses a CA file that is not a certificate, and a certificate file that is not one', () => {
    expect(() =>
      checkMaterial('lan-tls', CONFIG, material(server.certPem, server.keyPem, 'not a CA')),
    ).toThrow(/do not make a working TLS certificate/)
    expect(() => checkMaterial('lan-tls', CONFIG, material('garbage', server.keyPem))).toThrow(
      /do not make a working TLS certificate/,
    )
  })
})
