import { X509Certificate } from 'node:crypto'
import forge from 'node-forge'
import { PkiError } from './errors.js'

/** Parses a PEM certificate with an RSA key; `what` names it in the error. */
export function parseCertificatePem(pem: string, what: string): forge.pki.Certificate {
  try {
    return forge.pki.certificateFromPem(pem)
  } catch (cause) {
    throw new PkiError(
      'PKI_ERR_BAD_PEM',
      `Expected ${what} to be a PEM "CERTIFICATE" with an RSA key, got ${describePem(pem)}${keyTypeOf(pem)}`,
      { cause },
    )
  }
}

/** ", whose key is EC" for a certificate node-forge cannot read because its key is not RSA; else "". */
function keyTypeOf(pem: string): string {
  try {
    const type = new X509Certificate(pem).publicKey.asymmetricKeyType
    return type === undefined || type === 'rsa'
      ? ''
      : ` whose key is ${type.toUpperCase()} (an RSA CA is needed)`
  } catch {
    return ''
  }
}

/** Parses a PEM RSA private key (PKCS#1 or unencrypted PKCS#8). Never quotes the key. */
export function parsePrivateKeyPem(pem: string, what: string): forge.pki.rsa.PrivateKey {
  try {
    return forge.pki.privateKeyFromPem(pem) as forge.pki.rsa.PrivateKey
  } catch (cause) {
    throw new PkiError(
      'PKI_ERR_BAD_PEM',
      `Expected ${what} to be an unencrypted PEM RSA private key, got ${describePem(pem)}`,
      { cause },
    )
  }
}

/** Says what a PEM-ish value looks like without quoting any of its body. */
function describePem(pem: unknown): string {
  if (typeof pem !== 'string') return `\`${typeof pem}\``
  const label = /-----BEGIN ([A-Z0-9 ]+)-----/.exec(pem)?.[1]
  return label === undefined
    ? `a string of ${pem.length} characters with no PEM header`
    : `a "${label}" block`
}
