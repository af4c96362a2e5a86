import { createPublicKey, generateKeyPairSync, type KeyObject, X509Certificate } from 'node:crypto'
import forge from 'node-forge'
import { describe, expect, it } from 'vitest'
import { checkPushedBundle, checkPushedCertificate, readBundle } from '../../../bridge/rotation/check.js'
import { checkCsr, createCsr, issueFromCsr } from '../../../pki/csr.js'
import { createCertificateAuthority, issueCertificate } from '../../../pki/index.js'

const GATEWAY = 'gw-1'
const DAY = 86_400_000

function rsaKey(bits = 2048): { pem: string; key: KeyObject } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: bits })
  return { pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), key: privateKey }
}

const ca = createCertificateAuthority({ commonName: 'issuer CA' })
const otherCa = createCertificateAuthority({ commonName: 'other CA' })
const issuers = readBundle(ca.certPem) ?? []
const pending = rsaKey()

/** A certificate for `key` signed by `signer`, with the fields a case wants. */
function certificateFor(
  key: KeyObject,
  signer = ca,
  fields: { cn?: string; from?: number; to?: number; eku?: 'client' | 'server' | 'none' } = {},
): string {
  const cert = forge.pki.createCertificate()
  cert.publicKey = forge.pki.publicKeyFromPem(
    createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString(),
  )
  cert.serialNumber = '0102'
  cert.validity.notBefore = new Date(fields.from ?? Date.now() - DAY)
  cert.validity.notAfter = new Date(fields.to ?? Date.now() + DAY)
  cert.setSubject([{ name: 'commonName', value: fields.cn ?? GATEWAY }])
  cert.setIssuer(forge.pki.certificateFromPem(signer.certPem).subject.attributes)
  const eku = fields.eku ?? 'client'
  cert.setExtensions(
    eku === 'none'
      ? []
      : [{ name: 'extKeyUsage', ...(eku === 'client' ? { clientAuth: true } : { serverAuth: true }) }],
  )
  cert.sign(forge.pki.privateKeyFromPem(signer.keyPem), forge.md.sha256.create())
  return forge.pki.certificateToPem(cert)
}

describe('checkPushedCertificate: what a pushed client certificate must be', () => {
  it('accepts a certificate for the pending key, from an expected CA, valid now, clientAuth, CN = gateway id', () => {
    const result = checkPushedCertificate(certificateFor(pending.key), pending.key, issuers, GATEWAY)
    expect('certificate' in result && result.certificate.subject).toBe(`CN=${GATEWAY}`)
  })

  it.each([
    ['malformed_certificate', () => 'not a certificate'],
    ['malformed_certificate', () => certificateFor(pending.key) + certificateFor(pending.key)],
    ['key_mismatch', () => certificateFor(rsaKey().key)],
    ['wrong_ca', () => certificateFor(pending.key, otherCa)],
    [
      'not_yet_valid',
      () => certificateFor(pending.key, ca, { from: Date.now() + DAY, to: Date.now() + 2 * DAY }),
    ],
    ['expired', () => certificateFor(pending.key, ca, { from: Date.now() - 2 * DAY, to: Date.now() - DAY })],
    ['wrong_key_usage', () => certificateFor(pending.key, ca, { eku: 'server' })],
    ['wrong_key_usage', () => certificateFor(pending.key, ca, { eku: 'none' })],
    ['wrong_subject', () => certificateFor(pending.key, ca, { cn: 'gw-2' })],
  ])('refuses %s', (reason, make) => {
    expect(checkPushedCertificate(make(), pending.key, issuers, GATEWAY)).toMatchObject({ refused: reason })
  })

  it('refuses a good certificate beside any other PEM block or text: OpenSSL would use the first certificate it reads', () => {
    const good = certificateFor(pending.key)
    // Another subject, no clientAuth: refused alone, and what OpenSSL reads first under this label.
    const other = certificateFor(pending.key, ca, { cn: 'gw-2', eku: 'none' })
    const relabelled = (label: string) =>
      other.replaceAll('BEGIN CERTIFICATE', `BEGIN ${label}`).replaceAll('END CERTIFICATE', `END ${label}`)
    expect(new X509Certificate(relabelled('X509 CERTIFICATE')).subject).toBe('CN=gw-2')
    for (const pushed of [
      relabelled('X509 CERTIFICATE') + good,
      relabelled('TRUSTED CERTIFICATE') + good,
      good + relabelled('X509 CERTIFICATE'),
      `a note\n${good}`,
      `${good}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n`,
    ]) {
      expect(checkPushedCertificate(pushed, pending.key, issuers, GATEWAY)).toMatchObject({
        refused: 'malformed_certificate',
      })
    }
    expect(checkPushedCertificate(`\n${good}\n\n`, pending.key, issuers, GATEWAY)).toHaveProperty(
      'certificate',
    )
  })
})

describe('checkPushedBundle: a CA bundle for the broker', () => {
  it('accepts CA certificates, and refuses a leaf, an empty bundle and garbage', () => {
    expect(checkPushedBundle(ca.certPem + otherCa.certPem)).toMatchObject({ certificates: [{}, {}] })
    const leaf = issueCertificate(ca, { commonName: 'leaf', kind: 'server' }).certPem
    expect(checkPushedBundle(leaf)).toMatchObject({ refused: 'not_a_ca' })
    expect(checkPushedBundle('')).toMatchObject({ refused: 'malformed_bundle' })
    expect(checkPushedBundle('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----')).toMatchObject({
      refused: 'malformed_bundle',
    })
    expect(checkPushedBundle(ca.certPem.repeat(17))).toMatchObject({ refused: 'malformed_bundle' })
    const x509 = otherCa.certPem
      .replaceAll('BEGIN CERTIFICATE', 'BEGIN X509 CERTIFICATE')
      .replaceAll('END CERTIFICATE', 'END X509 CERTIFICATE')
    expect(checkPushedBundle(x509 + ca.certPem)).toMatchObject({ refused: 'malformed_bundle' })
  })
})

describe('CSR: made on the gateway, checked by the operator, issued from', () => {
  it('round trip: the issued certificate passes the gateway checks', () => {
    const csr = checkCsr(createCsr(pending.pem, GATEWAY), GATEWAY)
    if ('problem' in csr) throw new Error(csr.problem)
    const pem = issueFromCsr(ca, csr, 30)
    const checked = checkPushedCertificate(pem, pending.key, issuers, GATEWAY)
    expect(checked).toHaveProperty('certificate')
  })

  it('refuses another subject, a weak key, a broken signature and garbage', () => {
    expect(checkCsr(createCsr(pending.pem, 'gw-2'), GATEWAY)).toEqual({ problem: 'wrong_subject' })
    expect(checkCsr(createCsr(rsaKey(1024).pem, GATEWAY), GATEWAY)).toEqual({ problem: 'weak_key' })
    const csr = forge.pki.certificationRequestFromPem(createCsr(pending.pem, GATEWAY))
    csr.signature = `${csr.signature.slice(0, -1)}${String.fromCharCode(csr.signature.charCodeAt(csr.signature.length - 1) ^ 1)}`
    expect(checkCsr(forge.pki.certificationRequestToPem(csr), GATEWAY)).toEqual({ problem: 'bad_signature' })
    expect(checkCsr('garbage', GATEWAY)).toEqual({ problem: 'malformed' })
    expect(checkCsr('x'.repeat(20_000), GATEWAY)).toEqual({ problem: 'malformed' })
  })
})
