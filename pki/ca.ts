import forge from 'node-forge'
import {
  checkCommonName,
  checkValidDays,
  commonNameAttributes,
  randomSerialHex,
  validityWindow,
} from './certificate-fields.js'
import { generateRsaKey } from './keys.js'
import type { CertificateAuthority } from './types.js'

const DEFAULT_CA_VALID_DAYS = 3650

/**
 * A self-signed RSA 2048 CA: basicConstraints cA=true and keyUsage
 * keyCertSign+cRLSign (both critical), subject and authority key identifiers,
 * a random 16-byte serial, signed with SHA-256. Valid `validDays` (default 3650)
 * from five minutes ago.
 */
export function createCertificateAuthority(opts: {
  commonName: string
  validDays?: number
}): CertificateAuthority {
  const commonName = checkCommonName(opts.commonName)
  const validDays = checkValidDays(opts.validDays, DEFAULT_CA_VALID_DAYS)
  const key = generateRsaKey()

  const cert = forge.pki.createCertificate()
  cert.publicKey = key.publicKey
  cert.serialNumber = randomSerialHex()
  Object.assign(cert.validity, validityWindow(validDays))
  cert.setSubject(commonNameAttributes(commonName))
  cert.setIssuer(commonNameAttributes(commonName))
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
    // Self-signed: the authority key is the certificate's own key.
    { name: 'authorityKeyIdentifier', keyIdentifier: true },
  ])
  cert.sign(key.privateKey, forge.md.sha256.create())

  return { certPem: forge.pki.certificateToPem(cert), keyPem: key.keyPem }
}
