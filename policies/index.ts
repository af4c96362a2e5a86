export { describeWho } from './compiled-rule.js'
export { compilePolicy, PolicyEngine, type RuleMatches } from './engine.js'
export { PolicyError, type PolicyErrorCode } from './errors.js'
export { explain } from './explain.js'
export { RateLimiter, type RateLimiterOptions, type RateVerdict } from './rate-limiter.js'
export { type Policy, type PolicyInput, policySchema, type Rule, ruleSchema, type Who } from './schema.js'
export { SubscriberLimits } from './subscriber-limits.js'
export { TokenBucket } from './token-bucket.js'
export {
  filterCoveredBy,
  filtersIntersect,
  isValidTopicName,
  topicMatchesFilter,
  validateFilter,
} from './topic-filter.js'
export type * from './types.js'
