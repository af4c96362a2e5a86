import { EdgeGatewayError } from '../core/errors.js'

export type PolicyErrorCode = 'POLICY_ERR_SCHEMA' | 'POLICY_ERR_BAD_FILTER'

/**
 * A policy file that cannot be compiled. The message is one line naming the
 * rule (`rules[3]`, and its name when it has one) and quoting the bad value.
 */
export class PolicyError extends EdgeGatewayError {
  declare readonly code: PolicyErrorCode

  constructor(code: PolicyErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
  }
}
