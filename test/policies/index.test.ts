import { describe, expect, it } from 'vitest'
import * as policies from '../../policies/index.js'

describe('policies public API', () => {
  it('exports the engine, its helpers and the schema', () => {
    expect(Object.keys(policies).sort()).toEqual([
      'PolicyEngine',
      'PolicyError',
      'RateLimiter',
      'SubscriberLimits',
      'TokenBucket',
      'compilePolicy',
      'describeWho',
      'explain',
      'filterCoveredBy',
      'filtersIntersect',
      'isValidTopicName',
      'policySchema',
      'ruleSchema',
      'topicMatchesFilter',
      'validateFilter',
    ])
    const engine = policies.compilePolicy({ rules: [{ who: 'everyone', topic: '#', action: 'both' }] })
    expect(engine).toBeInstanceOf(policies.PolicyEngine)
  })
})
