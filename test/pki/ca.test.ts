import { createPrivateKey, X509Certificate } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { createCertificateAuthority } from '../../pki/ca.js'
import { PkiError } from '../../pki/errors.js'
import { thrownBy } from '../helpers/catch.js'
import {
  authorityKeyIdHex,
  extension,
  signatureAlgorithm,
  subjectKeyIdHex,
  validitySeconds,
} from './x509-fields.js'

const DAY_S = 24 * 60 * 60
const SKEW_S = 5 * 60

describe('createCertificateAuthority', () => {
  const ca = createCertificateAuthority({ commonName: 'test CA', validDays: 30 })
  const x509 = new X509Certificate(ca.certPem)

  it('makes a self-signed CA certificate that matches its key', () => {
    expect(x509.subject).toBe('CN=test CA')
    expect(x509.issuer).toBe('CN=test CA')
    expect(x509.ca).toBe(true)
    expect(x509.checkIssued(x509)).toBe(true)
    expect(x509.verify(x509.publicKey)).toBe(true)
    expect(x509.checkPrivateKey(createPrivateKey(ca.keyPem))).toBe(true)
  })

  it('uses RSA 2048, SHA-256 and an unencrypted PKCS#8 key', () => {
    expect(x509.publicKey.asymmetricKeyType).toBe('rsa')
    expect(x509.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048)
    expect(signatureAlgorithm(ca.certPem)).toBe('sha256WithRSAEncryption')
    expect(ca.keyPem.startsWith('-----BEGIN PRIVATE KEY-----\n')).toBe(true)
  })

  it('has critical basicConstraints cA=true and critical keyUsage keyCertSign+cRLSign only', () => {
    expect(extension(ca.certPem, 'basicConstraints')).toMatchObject({ critical: true, cA: true })
    expect(extension(ca.certPem, 'keyUsage')).toMatchObject({
      critical: true,
      keyCertSign: true,
      cRLSign: true,
      digitalSignature: false,
      nonRepudiation: false,
      keyEncipherment: false,
      dataEncipherment: false,
      keyAgreement: false,
    })
  })

  it('has a subject key identifier and an authority key identifier naming itself', () => {
    const ski = subjectKeyIdHex(ca.certPem)
    expect(ski).toMatch(/^[0-9a-f]{40}$/)
    expect(authorityKeyIdHex(ca.certPem)).toBe(ski)
  })

  it('has a positive 16-byte serial, different each time', () => {
    expect(x509.serialNumber).toMatch(/^[4-7][0-9A-F]{31}$/)
    const other = new X509Certificate(createCertificateAuthority({ commonName: 'test CA' }).certPem)
    expect(other.serialNumber).not.toBe(x509.serialNumber)
  })

  it('is valid from five minutes before issue for validDays', () => {
    expect(validitySeconds(ca.certPem)).toBe(30 * DAY_S + SKEW_S)
  })

  it('defaults to 3650 days', () => {
    expect(validitySeconds(createCertificateAuthority({ commonName: 'long CA' }).certPem)).toBe(
      3650 * DAY_S + SKEW_S,
    )
  })

  it('writes the common name as UTF-8', () => {
    expect(
      new X509Certificate(createCertificateAuthority({ commonName: 'Zürich lab CA' }).certPem).subject,
    ).toBe('CN=Zürich lab CA')
  })

  const cnMessage = 'Expected the `commonName` option to be a non-empty string of at most 64 characters, got'
  const daysMessage = 'Expected the `validDays` option to be an integer from 1 to 36500, got'
  it.each([
    [{ commonName: '' }, `${cnMessage} \`\` (string)`],
    [{ commonName: 'x'.repeat(65) }, `${cnMessage} \`${'x'.repeat(65)}\` (string)`],
    [{ commonName: 42 as unknown as string }, `${cnMessage} \`42\` (number)`],
    [{ commonName: 'ok', validDays: 0 }, `${daysMessage} \`0\` (number)`],
    [{ commonName: 'ok', validDays: 1.5 }, `${daysMessage} \`1.5\` (number)`],
  ])('refuses %j with PKI_ERR_BAD_OPTION', (opts, message) => {
    const thrown = thrownBy(() => createCertificateAuthority(opts))
    expect(thrown).toBeInstanceOf(PkiError)
    expect(thrown).toMatchObject({ name: 'PkiError', code: 'PKI_ERR_BAD_OPTION', message })
  })
})
