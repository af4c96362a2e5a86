import { createPublicKey, type KeyObject } from 'node:crypto'
import forge from 'node-forge'
import {
  checkCommonName,
  checkValidDays,
  commonNameAttributes,
  issuerAttributes,
  randomSerialHex,
  validityWindow,
} from './certificate-fields.js'
import { loadSigner } from './issue.js'
import { parsePrivateKeyPem } from './pem.js'
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
  const signer = loadSigner(ca)
  const cert = forge.pki.createCertificate()
  cert.publicKey = csr.request.publicKey as forge.pki.rsa.PublicKey
  cert.serialNumber = randomSerialHex()
  Object.assign(cert.validity, validityWindow(days))
  cert.setSubject(commonNameAttributes(csr.commonName))
  cert.setIssuer(issuerAttributes(signer.cert))
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', clientAuth: true },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: signer.keyIdentifier },
  ])
  cert.sign(signer.privateKey, forge.md.sha256.create())
  return forge.pki.certificateToPem(cert)
}
