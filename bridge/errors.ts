import { EdgeGatewayError } from '../core/errors.js'

export type BridgeErrorCode =
  | 'BRIDGE_ERR_TLS_FILES'
  | 'BRIDGE_ERR_CLOUD_CONNECT'
  | 'BRIDGE_ERR_CLOUD_REJECTED'
  | 'BRIDGE_ERR_KEY_FILE'
  | 'BRIDGE_ERR_CONSUMER_CONFIG'
  | 'BRIDGE_ERR_UNSENDABLE'
  | 'BRIDGE_ERR_FORWARDING_STOPPED'
  | 'BRIDGE_ERR_ROTATION'
  | 'BRIDGE_ERR_NONCES'

export class BridgeError extends EdgeGatewayError {
  declare readonly code: BridgeErrorCode

  constructor(code: BridgeErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
  }
}
