import { EdgeGatewayError } from '../core/errors.js'

export type DeviceErrorCode =
  /** The sequence file is unreadable or not in the expected format: the safe next number is unknown. */
  | 'DEVICE_ERR_SEQUENCE_FILE'
  /** Every sequence number (0 to 2^40 - 1) has been used: the device needs a new master secret. */
  | 'DEVICE_ERR_SEQUENCE_EXHAUSTED'
  /** An argument is out of range (block size). */
  | 'DEVICE_ERR_BAD_INPUT'

export class DeviceError extends EdgeGatewayError {
  declare readonly code: DeviceErrorCode

  constructor(code: DeviceErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
  }
}
