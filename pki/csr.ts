import { createPublicKey, type KeyObject, X509Certificate } from 'node:crypto'
import forge from 'node-forge'
import {
  checkCommonName,
  checkValidDays,
  commonNameAttributes,
  issuerAttributes,
  randomSerialHex,
  validityWindow,
} from './certificate-fields.js'
import { PkiError } from './errors.js'
import { parseCertificatePem, parsePrivateKeyPem } from './pem.js'
import type { CertificateAuthority } from './types.js'

/** A CSR is small; anything larger is refused before forge parses it. */
export const MAX_CSR_PEM_BYTES = 16 * 1024
/** The smallest RSA modulus a gateway key may have. */
export const MIN_RSA_BITS = 2048

/**
 * A PKCS#10 certification request for `commonName`, signed (SHA-256) by the RSA key in `keyPem`:
 * the proof that whoever asks holds the key the certificate will name.
 */
export function createCsr(keyPem: string, commonName: string): string {
  const privateKey = parsePrivateKeyPem(keyPem, 'the key to certify')
  const csr = forge.pki.createCertificationRequest()
  csr.publicKey = forge.pki.rsa.setPublicKey(privateKey.n, privateKey.e)
  csr.setSubject(commonNameAttributes(checkCommonName(commonName)))
  csr.sign(privateKey, forge.md.sha256.create())
  return forge.pki.certificationRequestToPem(csr)
}

export type CsrProblem = 'malformed' | 'bad_signature' | 'wrong_subject' | 'weak_key'

/** A request that passed `checkCsr`: its subject CN and its public key. */
export interface CheckedCsr {
  commonName: string
  publicKey: KeyObject
  /** forge's parsed request, for `issueFromCsr`. */
  request: forge.pki.CertificateSigningRequest
}

/**
 * Checks a CSR before anything is issued from it: it parses (at most MAX_CSR_PEM_BYTES), its
 * self-signature verifies (the requester holds the key), its subject is exactly CN=`commonName`,
 * and its key is RSA of at least MIN_RSA_BITS bits.
 */
export function checkCsr(pem: string, commonName: string): CheckedCsr | { problem: CsrProblem } {
  if (pem.length > MAX_CSR_PEM_BYTES) return { problem: 'malformed' }
  let request: forge.pki.CertificateSigningRequest
  try {
    request = forge.pki.certificationRequestFromPem(pem)
  } catch {
    return { problem: 'malformed' }
  }
  let signed = false
  try {
    signed = request.verify()
  } catch {
    signed = false
  }
  if (!signed) return { problem: 'bad_signature' }
  const attributes = request.subject.attributes
  const cn = attributes.length === 1 ? attributes[0] : undefined
  const value =
    cn?.shortName === 'CN' && typeof cn.value === 'string' ? forge.util.decodeUtf8(cn.value) : undefined
  if (value !== commonName) return { problem: 'wrong_subject' }
  const key = request.publicKey as forge.pki.rsa.PublicKey | null
  if (!key?.n || key.n.bitLength() < MIN_RSA_BITS) return { problem: 'weak_key' }
  const publicKey = createPublicKey(forge.pki.publicKeyToPem(key))
  return { commonName: value, publicKey, request }
}

/**
 * A client certificate (extKeyUsage clientAuth) for a checked request, signed by `ca` with
 * SHA-256, valid `validDays` (default 90) from five minutes ago; the subject is the request's.
 */
export function issueFromCsr(ca: CertificateAuthority, csr: CheckedCsr, validDays?: number): string {
  const days = checkValidDays(validDays, 90)
  const caCert = parseCertificatePem(ca.certPem, 'the CA certificate')
  const caKey = parsePrivateKeyPem(ca.keyPem, 'the CA key')
  const caPublic = caCert.publicKey as forge.pki.rsa.PublicKey
  if ((caCert.getExtension('basicConstraints') as { cA?: boolean } | undefined)?.cA !== true) {
    throw new PkiError('PKI_ERR_NOT_A_CA', 'Expected the CA certificate to have basicConstraints cA=true')
  }
  if (caPublic.n.compareTo(caKey.n) !== 0 || caPublic.e.compareTo(caKey.e) !== 0) {
    throw new PkiError('PKI_ERR_CA_KEY_MISMATCH', 'Expected the CA key to belong to the CA certificate')
  }
  const ski = caCert.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier?: string } | undefined
  const keyIdentifier =
    ski?.subjectKeyIdentifier !== undefined
      ? forge.util.hexToBytes(ski.subjectKeyIdentifier)
      : caCert.generateSubjectKeyIdentifier().getBytes()
  const cert = forge.pki.createCertificate()
  cert.publicKey = csr.request.publicKey as forge.pki.rsa.PublicKey
  cert.serialNumber = randomSerialHex()
  Object.assign(cert.validity, validityWindow(days))
  cert.setSubject(commonNameAttributes(csr.commonName))
  cert.setIssuer(issuerAttributes(caCert))
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', clientAuth: true },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier },
  ])
  cert.sign(caKey, forge.md.sha256.create())
  return forge.pki.certificateToPem(cert)
}

/** The PEM certificates in `text`, each parsed; throws PKI_ERR_BAD_PEM naming the first that is not one. */
export function parseCertificateBundle(text: string, what: string): X509Certificate[] {
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block)
    } catch (cause) {
      throw new PkiError('PKI_ERR_BAD_PEM', `${what}: certificate ${i + 1} does not parse`, { cause })
    }
  })
}
