export { type Accept, type AcceptDeps, createAccept, protocolErrorSeries } from './accept.js'
export { type GuardLimits, ProtocolGuard } from './guard.js'
export {
  CONNECTION_ERRORS,
  type ConnectionErrorReason,
  PROTOCOL_VIOLATIONS,
  type ProtocolViolation,
  type ProtocolViolationReason,
} from './violations.js'
