import { EdgeGatewayError } from '../core/errors.js'

export type BridgeErrorCode = 'BRIDGE_ERR_TLS_FILES' | 'BRIDGE_ERR_CLOUD_REJECTED'

export class BridgeError extends EdgeGatewayError {
  declare readonly code: BridgeErrorCode

  constructor(code: BridgeErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
  }
}
