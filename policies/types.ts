import type { Rule } from './schema.js'

/** Who is asking: everything a rule's `who` and its substitutions can refer to. */
export interface Principal {
  deviceId: string
  /** CONNECT username, when the client sent one. */
  username?: string
  clientId: string
  groups: ReadonlyArray<string>
}

export type Action = 'publish' | 'subscribe'

export interface PublishRequest {
  action: 'publish'
  topic: string
  qos: 0 | 1 | 2
  retain: boolean
  payloadBytes: number
}

export interface SubscribeRequest {
  action: 'subscribe'
  /** The filter the client asks for (may contain wildcards). */
  topic: string
  qos: 0 | 1 | 2
}

export type PolicyRequest = PublishRequest | SubscribeRequest

/** A rule after compilation: its index in the file and a display name. */
export interface CompiledRule extends Readonly<Rule> {
  readonly index: number
  readonly label: string
}

export type DenyReason =
  | 'no_rule' // no allow rule matched: deny by default
  | 'deny_rule' // an explicit deny rule matched
  | 'qos' // publish QoS above the rule's maxQos
  | 'retain' // retain flag set where the rule forbids it
  | 'size' // payload larger than maxPayloadBytes
  | 'dollar' // `$` topic and no `$` rule
  | 'topic_too_long' // topic or filter over the policy's maxTopicBytes

export type Decision =
  | {
      allowed: true
      rule: CompiledRule
      /** For subscribe: the QoS to grant (the lower of requested and maxQos). */
      grantedQos: 0 | 1 | 2
      /** The rule's filter with %c/%u/%d substituted for this principal. */
      ruleFilter: string
    }
  | { allowed: false; reason: DenyReason; rule?: CompiledRule }
