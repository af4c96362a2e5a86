import { EdgeGatewayError } from '../../core/errors.js'

export type QueueErrorCode = 'QUEUE_ERR_OPTIONS' | 'QUEUE_ERR_CLOSED' | 'QUEUE_ERR_RECORD' | 'QUEUE_ERR_IO'

/**
 * - QUEUE_ERR_OPTIONS: an option of the durable queue is out of range or inconsistent.
 * - QUEUE_ERR_CLOSED: append after close().
 * - QUEUE_ERR_RECORD: a message cannot be stored (a topic, device id or client id over 65,535 bytes).
 * - QUEUE_ERR_IO: the queue folder cannot be written, synced or read; the append is not durable.
 */
export class QueueError extends EdgeGatewayError {
  declare readonly code: QueueErrorCode

  constructor(code: QueueErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
  }
}
