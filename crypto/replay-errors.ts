import { EdgeGatewayError } from '../core/errors.js'

export type ReplayStoreErrorCode =
  | 'CRYPTO_ERR_REPLAY_STORE_FULL' // the snapshot would exceed the store's size limit
  | 'CRYPTO_ERR_REPLAY_STORE_CLOSED' // save after close()
  | 'CRYPTO_ERR_REPLAY_STORE_IO' // the snapshot could not be written durably

export class ReplayStoreError extends EdgeGatewayError {
  declare readonly code: ReplayStoreErrorCode

  constructor(code: ReplayStoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
  }
}
