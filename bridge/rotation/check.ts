import { createPublicKey, type KeyObject, X509Certificate } from 'node:crypto'
import { MAX_BUNDLE_CERTIFICATES } from './messages.js'

/** The OID of extKeyUsage clientAuth. */
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2'

export type CertificateRefusal =
  | 'malformed_certificate'
  | 'key_mismatch'
  | 'wrong_ca'
  | 'not_yet_valid'
  | 'expired'
  | 'wrong_key_usage'
  | 'wrong_subject'

export type BundleRefusal = 'malformed_bundle' | 'not_a_ca' | 'expired'

export interface Refused<R extends string> {
  refused: R
  detail: string
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g

/**
 * Whether `text` is CERTIFICATE blocks and whitespace alone. OpenSSL reads other labels too
 * (`X509 CERTIFICATE`, `TRUSTED CERTIFICATE`) and takes the first certificate it finds, so text
 * around the blocks that are checked could be what a TLS connection would use.
 */
function onlyCertificateBlocks(text: string): boolean {
  return text.replace(PEM_CERTIFICATE, '').trim() === ''
}

/** The certificates of a PEM bundle; undefined when a block does not parse. */
export function readBundle(text: string): X509Certificate[] | undefined {
  const out: X509Certificate[] = []
  for (const block of text.match(PEM_CERTIFICATE) ?? []) {
    try {
      out.push(new X509Certificate(block))
    } catch {
      return undefined
    }
  }
  return out
}

/** SubjectPublicKeyInfo DER of a public key, or of a private key's public half. */
function spki(key: KeyObject): Buffer {
  return (key.type === 'private' ? createPublicKey(key) : key).export({ type: 'spki', format: 'der' })
}

/** The subject's CN when the subject is exactly one CN, else undefined. */
function soleCommonName(cert: X509Certificate): string | undefined {
  const parts = cert.subject.split('\n')
  return parts.length === 1 && parts[0]?.startsWith('CN=') ? parts[0].slice(3) : undefined
}

/**
 * Checks a client certificate pushed for the pending key (docs/rotation.md, "What the gateway
 * checks"), cheapest first: it parses (one certificate), names the pending key, is issued and
 * signed by one of `issuers`, is valid at `now`, has extKeyUsage clientAuth, and its subject is
 * exactly CN=`gatewayId`.
 */
export function checkPushedCertificate(
  pem: string,
  pendingKey: KeyObject,
  issuers: readonly X509Certificate[],
  gatewayId: string,
  now = Date.now(),
): { certificate: X509Certificate } | Refused<CertificateRefusal> {
  const certs = onlyCertificateBlocks(pem) ? readBundle(pem) : undefined
  const cert = certs?.length === 1 ? certs[0] : undefined
  if (!cert) {
    return {
      refused: 'malformed_certificate',
      detail: 'not exactly one PEM certificate (a CERTIFICATE block, and nothing else but whitespace)',
    }
  }
  if (!spki(cert.publicKey).equals(spki(pendingKey))) {
    return { refused: 'key_mismatch', detail: 'the certificate names another key than the pending CSR' }
  }
  const issuer = issuers.find((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey))
  if (!issuer) {
    return {
      refused: 'wrong_ca',
      detail: `issued by ${cert.issuer.replace(/\n/g, ', ')}, which is not a CA the gateway expects for its certificates`,
    }
  }
  const from = Date.parse(cert.validFrom)
  const to = Date.parse(cert.validTo)
  if (now < from) return { refused: 'not_yet_valid', detail: `valid from ${new Date(from).toISOString()}` }
  if (now > to) return { refused: 'expired', detail: `expired ${new Date(to).toISOString()}` }
  if (!(cert.keyUsage ?? []).includes(CLIENT_AUTH)) {
    return { refused: 'wrong_key_usage', detail: 'no extKeyUsage clientAuth' }
  }
  const cn = soleCommonName(cert)
  if (cn !== gatewayId) {
    return {
      refused: 'wrong_subject',
      detail: `subject ${cert.subject.replace(/\n/g, ', ')}, expected CN=${gatewayId}`,
    }
  }
  return { certificate: cert }
}

/** Checks a pushed CA bundle: 1 to 16 certificates, each a CA, none expired at `now`. */
export function checkPushedBundle(
  pem: string,
  now = Date.now(),
): { certificates: X509Certificate[] } | Refused<BundleRefusal> {
  const certs = onlyCertificateBlocks(pem) ? readBundle(pem) : undefined
  if (!certs || certs.length === 0 || certs.length > MAX_BUNDLE_CERTIFICATES) {
    return {
      refused: 'malformed_bundle',
      detail: `not 1 to ${MAX_BUNDLE_CERTIFICATES} PEM certificates (CERTIFICATE blocks, and nothing else but whitespace)`,
    }
  }
  for (const cert of certs) {
    const name = cert.subject.replace(/\n/g, ', ')
    if (!cert.ca) return { refused: 'not_a_ca', detail: `${name} is not a CA certificate` }
    if (now > Date.parse(cert.validTo)) return { refused: 'expired', detail: `${name} has expired` }
  }
  return { certificates: certs }
}
