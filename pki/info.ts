import { X509Certificate } from 'node:crypto'
import { PkiError } from './errors.js'
import type { CertificateInfo } from './types.js'

/** Subject, issuer, expiry and SHA-256 fingerprint of a PEM certificate, via Node's OpenSSL. */
export function certificateInfo(certPem: string): CertificateInfo {
  let cert: X509Certificate
  try {
    cert = new X509Certificate(certPem)
  } catch (cause) {
    throw new PkiError('PKI_ERR_BAD_PEM', 'Expected a PEM "CERTIFICATE" that OpenSSL can parse', { cause })
  }
  return {
    subject: cert.subject,
    issuer: cert.issuer,
    // `validTo` reads like `Mar  1 12:00:00 2035 GMT`, which Date parses.
    notAfter: new Date(cert.validTo),
    fingerprint256: cert.fingerprint256,
  }
}
