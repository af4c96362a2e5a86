export { describeError, EdgeGatewayError } from './errors.js'
export { createLogger, type Logger, type LoggerOptions } from './logger.js'
export { Metrics } from './metrics.js'
export { type SecurityEventFields, type SecurityEventName, SecurityEvents } from './security-events.js'
