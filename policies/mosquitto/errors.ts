import { EdgeGatewayError } from '../../core/errors.js'

export type MosquittoImportErrorCode =
  /** The input is larger than the parser's byte limit. */
  | 'MOSQ_ERR_INPUT_TOO_LARGE'
  /** A file could not be read (missing, unreadable, not a regular file). */
  | 'MOSQ_ERR_READ_FILE'
  /** An option passed to a parser or verifier is out of range. */
  | 'MOSQ_ERR_BAD_OPTION'

/**
 * A Mosquitto file that cannot be imported at all. Broken lines are never
 * thrown: the parsers report them in `problems` with their line number.
 */
export class MosquittoImportError extends EdgeGatewayError {
  declare readonly code: MosquittoImportErrorCode

  constructor(code: MosquittoImportErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
  }
}
