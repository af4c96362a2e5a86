import { constants, createPrivateKey, type KeyObject, privateDecrypt, X509Certificate } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import type { CloudConfig } from '../config/index.js'
import type { CloudProtector } from './cloud-protector.js'
import { encodeKeyBinding } from './envelope.js'
import { BridgeError } from './errors.js'

/** The reserved control tree on the cloud link: `<prefix>/<gateway id>/...` (docs/cloud-envelope.md). */
export class ControlTopics {
  readonly root: string
  constructor(prefix: string, gatewayId: string) {
    this.root = `${prefix}/${gatewayId}`
  }
  /** The key binding (retained): the signing key, vouched for by the TLS client certificate. */
  get binding(): string {
    return `${this.root}/binding`
  }
  /** online / offline (retained; offline is the Will). */
  get status(): string {
    return `${this.root}/status`
  }
  /** Queue, link, tunnel and certificate figures, every `control.intervalSeconds`. */
  get health(): string {
    return `${this.root}/health`
  }
  /** Operator to gateway: signed rotation commands (docs/rotation.md). */
  get rotate(): string {
    return `${this.root}/rotate`
  }
  /** Gateway to operator: signed rotation replies (CSR, applied, refused, rolled back, trusted). */
  get rotation(): string {
    return `${this.root}/rotation`
  }
}

export interface CertificateStatus {
  subject: string
  /** Upper-case hex, as OpenSSL prints it. */
  serial: string
  notAfter: string
  daysLeft: number
}

/** The gateway's TLS client certificate: its expiry, and the key binding made with its key. */
export class GatewayCertificate {
  private constructor(
    private current: X509Certificate,
    private key: KeyObject,
  ) {}

  get certificate(): X509Certificate {
    return this.current
  }

  /** A rotation moved the link to `certificate` and `key`: bindings are made with them from now on. */
  replace(certificate: X509Certificate, key: KeyObject): void {
    this.current = certificate
    this.key = key
  }

  static async load(cloud: CloudConfig): Promise<GatewayCertificate> {
    try {
      const cert = new X509Certificate(await readFile(cloud.certFile))
      const key = createPrivateKey(await readFile(cloud.keyFile))
      return new GatewayCertificate(cert, key)
    } catch (err) {
      throw new BridgeError(
        'BRIDGE_ERR_TLS_FILES',
        `cannot read the gateway certificate ${cloud.certFile} and key ${cloud.keyFile}`,
        { cause: err },
      )
    }
  }

  /** Opens what was RSA-OAEP (SHA-256) encrypted to this certificate's key; throws when it cannot. */
  decrypt(ciphertext: Buffer): Buffer {
    return privateDecrypt(
      { key: this.key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
      ciphertext,
    )
  }

  status(now = Date.now()): CertificateStatus {
    const notAfter = Date.parse(this.certificate.validTo)
    return {
      subject: this.certificate.subject.replace(/\n/g, ', '),
      serial: this.certificate.serialNumber,
      notAfter: new Date(notAfter).toISOString(),
      daysLeft: Math.floor((notAfter - now) / 86_400_000),
    }
  }

  /** The binding of the protector's signing key to this certificate, signed with the certificate's key. */
  binding(gatewayId: string, protector: CloudProtector, signingPublicKey: KeyObject): Buffer {
    return encodeKeyBinding(
      {
        gatewayId,
        kid: protector.kid,
        signingKey: signingPublicKey.export({ type: 'spki', format: 'der' }),
        certificate: this.certificate.raw,
        issuedAt: Date.now(),
      },
      this.key,
    )
  }
}
