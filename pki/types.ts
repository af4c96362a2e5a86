/** A certificate and its private key, both PEM (the key is PKCS#8, unencrypted). */
export interface KeyPairPem {
  certPem: string
  keyPem: string
}

/** A self-signed CA certificate and the key that signs what it issues. */
export interface CertificateAuthority extends KeyPairPem {}

/** Absolute paths of the files `mintLabPki` writes. */
export interface LabPki {
  dir: string
  caFile: string
  cloudCaFile?: never
  serverCertFile: string
  serverKeyFile: string
  clientCertFile: string
  clientKeyFile: string
}

export interface CertificateInfo {
  /** Distinguished name as OpenSSL prints it, e.g. `CN=cloud-broker`. */
  subject: string
  issuer: string
  notAfter: Date
  /** SHA-256 of the DER, upper-case hex pairs joined by `:`. */
  fingerprint256: string
}
