import { EdgeGatewayError } from '../core/errors.js'

/**
 * Stable codes of the errors `crypto/` throws on purpose. Received bytes never
 * make it throw: opening a payload returns an `OpenFailure` instead. These are
 * for bad configuration and programming errors on the sending side.
 */
export type CryptoErrorCode =
  /** A master secret, master salt, key id or signing key has the wrong length or type. */
  | 'CRYPTO_ERR_BAD_KEY'
  /** An algorithm identifier is not one the project supports for that use. */
  | 'CRYPTO_ERR_BAD_ALG'
  /** A sequence number is not an integer from 0 to 2^40 - 1. */
  | 'CRYPTO_ERR_BAD_SEQ'
  /** Another argument has the wrong type or range (limits, token nonce, timestamps, plaintext size). */
  | 'CRYPTO_ERR_BAD_INPUT'
  /** Bytes are not well-formed CBOR, or break the strict profile (see docs/wire-format.md). */
  | 'CRYPTO_ERR_CBOR_MALFORMED'
  /** CBOR input is larger than the caller's limit. */
  | 'CRYPTO_ERR_CBOR_OVERSIZE'
  /** A value cannot be encoded in the strict CBOR profile (float, undefined, unsafe integer). */
  | 'CRYPTO_ERR_CBOR_ENCODE'

export class CryptoError extends EdgeGatewayError {
  declare readonly code: CryptoErrorCode

  constructor(code: CryptoErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
  }
}
