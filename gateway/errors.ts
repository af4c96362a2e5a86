import { EdgeGatewayError } from '../core/errors.js'

export type GatewayErrorCode =
  | 'GW_ERR_BAD_PASSWORD_HASH'
  | 'GW_ERR_BAD_PSK_FILE'
  | 'GW_ERR_BAD_PEPPER_FILE'
  | 'GW_ERR_LISTEN'
  | 'GW_ERR_LISTENER_CERTIFICATE'
  | 'GW_ERR_PUBLISH_DENIED'
  | 'GW_ERR_UPLINK_FULL'
  | 'GW_ERR_POLICY_FILE'
  | 'GW_ERR_DUPLICATE_USERNAME'
  | 'GW_ERR_DUPLICATE_PSK_IDENTITY'

export class GatewayError extends EdgeGatewayError {
  declare readonly code: GatewayErrorCode

  constructor(code: GatewayErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
  }
}
