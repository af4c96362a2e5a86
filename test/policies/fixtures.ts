import type { PolicyInput } from '../../policies/schema.js'
import type { Principal, PublishRequest, SubscribeRequest } from '../../policies/types.js'

type RuleInput = PolicyInput['rules'][number]

export function policy(...rules: RuleInput[]): PolicyInput {
  return { rules }
}

export function principal(overrides: Partial<Principal> = {}): Principal {
  return { deviceId: 'dev-1', clientId: 'cl-1', username: 'alice', groups: [], ...overrides }
}

export function pub(
  topic: string,
  overrides: Partial<Omit<PublishRequest, 'action' | 'topic'>> = {},
): PublishRequest {
  return { action: 'publish', topic, qos: 0, retain: false, payloadBytes: 10, ...overrides }
}

export function sub(topic: string, qos: 0 | 1 | 2 = 0): SubscribeRequest {
  return { action: 'subscribe', topic, qos }
}
