import forge from 'node-forge'
import { toForgeAltNames } from './alt-names.js'
import {
  checkCommonName,
  checkValidDays,
  commonNameAttributes,
  issuerAttributes,
  randomSerialHex,
  validityWindow,
} from './certificate-fields.js'
import { PkiError } from './errors.js'
import { generateRsaKey, type RsaKey } from './keys.js'
import { parseCertificatePem, parsePrivateKeyPem } from './pem.js'
import type { CertificateAuthority, KeyPairPem } from './types.js'

const DEFAULT_LEAF_VALID_DAYS = 397

export interface IssueOptions {
  commonName: string
  kind: 'server' | 'client'
  /** IP addresses become iPAddress SANs, other strings dNSName SANs. Server default: `[commonName]`. */
  altNames?: string[]
  /** Default 397. */
  validDays?: number
  /**
   * The certificate's key: default a fresh RSA 2048 key. The fleet simulator (bench/) gives its
   * thousand simulated gateways one key, each its own certificate, to make them in seconds.
   */
  key?: RsaKey
}

/**
 * A leaf certificate with a fresh RSA 2048 key, signed by `ca` with SHA-256.
 * keyUsage digitalSignature+keyEncipherment; extKeyUsage serverAuth (server)
 * or clientAuth (client); basicConstraints cA=false; key identifiers so
 * OpenSSL 3 can build the chain. notBefore is five minutes ago (clock skew).
 */
export function issueCertificate(ca: CertificateAuthority, opts: IssueOptions): KeyPairPem {
  const commonName = checkCommonName(opts.commonName)
  const validDays = checkValidDays(opts.validDays, DEFAULT_LEAF_VALID_DAYS)
  if (opts.kind !== 'server' && opts.kind !== 'client') {
    throw new PkiError(
      'PKI_ERR_BAD_OPTION',
      `Expected the \`kind\` option to be \`server\` or \`client\`, got \`${String(opts.kind)}\``,
    )
  }
  const altNames = toForgeAltNames(opts.altNames ?? (opts.kind === 'server' ? [commonName] : []))
  const signer = loadSigner(ca)
  const key = opts.key ?? generateRsaKey()

  const cert = forge.pki.createCertificate()
  cert.publicKey = key.publicKey
  cert.serialNumber = randomSerialHex()
  Object.assign(cert.validity, validityWindow(validDays))
  cert.setSubject(commonNameAttributes(commonName))
  cert.setIssuer(issuerAttributes(signer.cert))
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    opts.kind === 'server'
      ? { name: 'extKeyUsage', serverAuth: true }
      : { name: 'extKeyUsage', clientAuth: true },
    ...(altNames.length > 0 ? [{ name: 'subjectAltName', altNames }] : []),
    { name: 'subjectKeyIdentifier' },
    // forge's `keyIdentifier: true` would hash the leaf's own key: pass the CA's.
    { name: 'authorityKeyIdentifier', keyIdentifier: signer.keyIdentifier },
  ])
  cert.sign(signer.privateKey, forge.md.sha256.create())

  return { certPem: forge.pki.certificateToPem(cert), keyPem: key.keyPem }
}

export interface Signer {
  cert: forge.pki.Certificate
  privateKey: forge.pki.rsa.PrivateKey
  /** Binary string: the CA's subjectKeyIdentifier. */
  keyIdentifier: string
}

/** The CA's certificate and key, checked to be a CA and to belong together, ready to sign. */
export function loadSigner(ca: CertificateAuthority): Signer {
  const cert = parseCertificatePem(ca.certPem, 'the CA certificate')
  const privateKey = parsePrivateKeyPem(ca.keyPem, 'the CA key')
  const basicConstraints = cert.getExtension('basicConstraints') as { cA?: boolean } | undefined
  if (basicConstraints?.cA !== true) {
    throw new PkiError(
      'PKI_ERR_NOT_A_CA',
      `Expected the CA certificate (${describeSubject(cert)}) to have basicConstraints cA=true`,
    )
  }
  const publicKey = cert.publicKey as forge.pki.rsa.PublicKey
  if (publicKey.n.compareTo(privateKey.n) !== 0 || publicKey.e.compareTo(privateKey.e) !== 0) {
    throw new PkiError(
      'PKI_ERR_CA_KEY_MISMATCH',
      `Expected the CA key to belong to the CA certificate (${describeSubject(cert)}); it is another key`,
    )
  }
  const ski = cert.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier?: string } | undefined
  const keyIdentifier =
    ski?.subjectKeyIdentifier !== undefined
      ? forge.util.hexToBytes(ski.subjectKeyIdentifier)
      : cert.generateSubjectKeyIdentifier().getBytes()
  return { cert, privateKey, keyIdentifier }
}

function describeSubject(cert: forge.pki.Certificate): string {
  const cn = cert.subject.getField('CN') as { value?: string } | null
  return cn?.value === undefined ? 'no CN' : `CN=${cn.value}`
}
