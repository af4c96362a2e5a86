import { EdgeGatewayError } from '../core/errors.js'

/** Stable codes of the errors `pki/` throws on purpose. */
export type PkiErrorCode =
  /** A PEM string could not be parsed as the expected certificate or RSA key. */
  | 'PKI_ERR_BAD_PEM'
  /** An option (common name, validity) has the wrong type or range. */
  | 'PKI_ERR_BAD_OPTION'
  /** A subjectAltName is neither an IP address nor a DNS name. */
  | 'PKI_ERR_BAD_ALT_NAME'
  /** The certificate given as the CA lacks basicConstraints cA=true. */
  | 'PKI_ERR_NOT_A_CA'
  /** The CA private key does not belong to the CA certificate. */
  | 'PKI_ERR_CA_KEY_MISMATCH'
  /** A certificate or key file could not be written. */
  | 'PKI_ERR_WRITE_FILE'

export class PkiError extends EdgeGatewayError {
  declare readonly code: PkiErrorCode

  constructor(code: PkiErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
  }
}
