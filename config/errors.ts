import { EdgeGatewayError } from '../core/errors.js'

export type ConfigErrorCode =
  | 'CONFIG_ERR_NOT_FOUND'
  | 'CONFIG_ERR_UNREADABLE'
  | 'CONFIG_ERR_YAML'
  | 'CONFIG_ERR_SCHEMA'
  | 'CONFIG_ERR_CROSS_FIELD'
  | 'CONFIG_ERR_SECRET_FILE'

/** A configuration problem. The message is one line: the file, the path inside it, what was wrong. */
export class ConfigError extends EdgeGatewayError {
  declare readonly code: ConfigErrorCode

  constructor(code: ConfigErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
  }
}
