import { createHash, X509Certificate } from 'node:crypto'
import forge from 'node-forge'
import { describe, expect, it } from 'vitest'
import { createCertificateAuthority } from '../../pki/ca.js'
import { certificateInfo } from '../../pki/info.js'
import { issueCertificate } from '../../pki/issue.js'
import { thrownBy } from '../helpers/catch.js'

describe('certificateInfo', () => {
  const ca = createCertificateAuthority({ commonName: 'info CA' })
  const leaf = issueCertificate(ca, { commonName: 'info-leaf', kind: 'client', validDays: 10 })

  it('reads subject, issuer, notAfter and the SHA-256 fingerprint', () => {
    const der = new X509Certificate(leaf.certPem).raw
    const fingerprint = createHash('sha256').update(der).digest('hex').toUpperCase().match(/../g)!.join(':')
    expect(certificateInfo(leaf.certPem)).toEqual({
      subject: 'CN=info-leaf',
      issuer: 'CN=info CA',
      notAfter: forge.pki.certificateFromPem(leaf.certPem).validity.notAfter,
      fingerprint256: fingerprint,
    })
  })

  it('refuses what is not a certificate with PKI_ERR_BAD_PEM', () => {
    expect(thrownBy(() => certificateInfo(leaf.keyPem))).toMatchObject({
      name: 'PkiError',
      code: 'PKI_ERR_BAD_PEM',
      message: 'Expected a PEM "CERTIFICATE" that OpenSSL can parse',
    })
  })
})
