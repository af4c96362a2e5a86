import { createPrivateKey, X509Certificate } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { createCertificateAuthority } from '../../pki/ca.js'
import { PkiError } from '../../pki/errors.js'
import { issueCertificate } from '../../pki/issue.js'
import { thrownBy } from '../helpers/catch.js'
import {
  authorityKeyIdHex,
  extension,
  signatureAlgorithm,
  subjectKeyIdHex,
  validitySeconds,
} from './x509-fields.js'

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1'
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2'

describe('issueCertificate', () => {
  const ca = createCertificateAuthority({ commonName: 'issuing CA' })
  const caX509 = new X509Certificate(ca.certPem)
  const otherCa = createCertificateAuthority({ commonName: 'issuing CA' })
  const otherCaX509 = new X509Certificate(otherCa.certPem)
  const server = issueCertificate(ca, {
    commonName: 'cloud-broker',
    kind: 'server',
    altNames: ['127.0.0.1', '::1', 'localhost', 'broker.example'],
  })
  const serverX509 = new X509Certificate(server.certPem)
  const client = issueCertificate(ca, { commonName: 'edge-gateway', kind: 'client' })
  const clientX509 = new X509Certificate(client.certPem)

  it('signs a server certificate that chains to the CA', () => {
    expect(serverX509.subject).toBe('CN=cloud-broker')
    expect(serverX509.issuer).toBe('CN=issuing CA')
    expect(serverX509.ca).toBe(false)
    // `a.checkIssued(b)`: was a issued by b?
    expect(serverX509.checkIssued(caX509)).toBe(true)
    expect(caX509.checkIssued(serverX509)).toBe(false)
    expect(serverX509.verify(caX509.publicKey)).toBe(true)
    expect(signatureAlgorithm(server.certPem)).toBe('sha256WithRSAEncryption')
  })

  it('does not verify against a different CA with the same name', () => {
    expect(serverX509.verify(otherCaX509.publicKey)).toBe(false)
    // Same name, different key: the authority key identifier tells them apart.
    expect(serverX509.checkIssued(otherCaX509)).toBe(false)
    expect(clientX509.verify(otherCaX509.publicKey)).toBe(false)
    const foreign = new X509Certificate(
      issueCertificate(otherCa, { commonName: 'edge-gateway', kind: 'client' }).certPem,
    )
    expect(foreign.verify(caX509.publicKey)).toBe(false)
  })

  it('puts IP addresses in iPAddress SANs and other names in dNSName SANs', () => {
    expect(serverX509.subjectAltName).toBe(
      'IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, DNS:localhost, DNS:broker.example',
    )
    expect(serverX509.checkIP('127.0.0.1')).toBe('127.0.0.1')
    expect(serverX509.checkIP('::1')).toBe('::1')
    expect(serverX509.checkHost('broker.example')).toBe('broker.example')
    expect(serverX509.checkIP('127.0.0.2')).toBeUndefined()
  })

  it('gives a server certificate serverAuth and a client certificate clientAuth', () => {
    expect(serverX509.keyUsage).toEqual([SERVER_AUTH])
    expect(clientX509.keyUsage).toEqual([CLIENT_AUTH])
  })

  it('sets critical keyUsage digitalSignature+keyEncipherment and critical cA=false on both kinds', () => {
    for (const pem of [server.certPem, client.certPem]) {
      expect(extension(pem, 'keyUsage')).toMatchObject({
        critical: true,
        digitalSignature: true,
        keyEncipherment: true,
        keyCertSign: false,
        cRLSign: false,
      })
      expect(extension(pem, 'basicConstraints')).toMatchObject({ critical: true, cA: false })
    }
  })

  it('names the CA key in authorityKeyIdentifier and its own key in subjectKeyIdentifier', () => {
    expect(authorityKeyIdHex(server.certPem)).toBe(subjectKeyIdHex(ca.certPem))
    expect(authorityKeyIdHex(client.certPem)).toBe(subjectKeyIdHex(ca.certPem))
    expect(subjectKeyIdHex(server.certPem)).not.toBe(subjectKeyIdHex(ca.certPem))
  })

  it('gives a client certificate no SAN unless asked', () => {
    expect(clientX509.subjectAltName).toBeUndefined()
  })

  it('gives a server certificate its common name as DNS SAN by default', () => {
    const plain = new X509Certificate(
      issueCertificate(ca, { commonName: 'broker.lan', kind: 'server' }).certPem,
    )
    expect(plain.subjectAltName).toBe('DNS:broker.lan')
  })

  it('is valid from five minutes before issue for validDays, 397 by default', () => {
    expect(validitySeconds(server.certPem)).toBe(397 * 86_400 + 300)
    const short = issueCertificate(ca, { commonName: 'c', kind: 'client', validDays: 2 })
    expect(validitySeconds(short.certPem)).toBe(2 * 86_400 + 300)
  })

  it('makes a fresh key each time', () => {
    expect(serverX509.checkPrivateKey(createPrivateKey(server.keyPem))).toBe(true)
    expect(clientX509.checkPrivateKey(createPrivateKey(server.keyPem))).toBe(false)
  })

  it('copies a UTF-8 CA name into the issuer byte for byte', () => {
    const utf8Ca = createCertificateAuthority({ commonName: 'Zürich lab CA' })
    const leaf = new X509Certificate(issueCertificate(utf8Ca, { commonName: 'gw', kind: 'client' }).certPem)
    expect(leaf.issuer).toBe('CN=Zürich lab CA')
    expect(leaf.checkIssued(new X509Certificate(utf8Ca.certPem))).toBe(true)
  })

  it('refuses an alt name that is neither an IP address nor a DNS name', () => {
    for (const bad of ['fe80::1%eth0', 'bad name', 'under_score.example', '']) {
      expect(
        thrownBy(() => issueCertificate(ca, { commonName: 's', kind: 'server', altNames: [bad] })),
      ).toMatchObject({
        code: 'PKI_ERR_BAD_ALT_NAME',
        message: `Expected alt name \`${bad}\` to be an IPv4/IPv6 address (no zone id) or a DNS name like \`broker.example\``,
      })
    }
  })

  it('refuses an unknown kind', () => {
    const opts = { commonName: 's', kind: 'router' as 'server' }
    expect(thrownBy(() => issueCertificate(ca, opts))).toMatchObject({
      code: 'PKI_ERR_BAD_OPTION',
      message: 'Expected the `kind` option to be `server` or `client`, got `router`',
    })
  })

  it('refuses a leaf certificate as CA', () => {
    const err = thrownBy(() => issueCertificate(server, { commonName: 'x', kind: 'client' }))
    expect(err).toBeInstanceOf(PkiError)
    expect(err).toMatchObject({
      code: 'PKI_ERR_NOT_A_CA',
      message: 'Expected the CA certificate (CN=cloud-broker) to have basicConstraints cA=true',
    })
  })

  it('refuses a CA key that belongs to another CA', () => {
    const mixed = { certPem: ca.certPem, keyPem: otherCa.keyPem }
    expect(thrownBy(() => issueCertificate(mixed, { commonName: 'x', kind: 'client' }))).toMatchObject({
      code: 'PKI_ERR_CA_KEY_MISMATCH',
      message: 'Expected the CA key to belong to the CA certificate (CN=issuing CA); it is another key',
    })
  })

  it('refuses PEM it cannot parse, without quoting the key', () => {
    const badCert = { certPem: 'not a certificate', keyPem: ca.keyPem }
    expect(thrownBy(() => issueCertificate(badCert, { commonName: 'x', kind: 'client' }))).toMatchObject({
      code: 'PKI_ERR_BAD_PEM',
      message:
        'Expected the CA certificate to be a PEM "CERTIFICATE" with an RSA key, got a string of 17 characters with no PEM header',
    })
    const badKey = { certPem: ca.certPem, keyPem: ca.keyPem.replace(/[A-Za-z]{20}/, 'x') }
    const err = thrownBy(() => issueCertificate(badKey, { commonName: 'x', kind: 'client' }))
    expect(err).toMatchObject({
      code: 'PKI_ERR_BAD_PEM',
      message: 'Expected the CA key to be an unencrypted PEM RSA private key, got a "PRIVATE KEY" block',
    })
    expect((err as Error).cause).toBeInstanceOf(Error)
  })
})
