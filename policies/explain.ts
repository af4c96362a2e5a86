import { describeWho } from './compiled-rule.js'
import type { PolicyEngine } from './engine.js'
import { isValidTopicName, validateFilter } from './topic-filter.js'
import type { CompiledRule, Decision, PolicyRequest, Principal } from './types.js'

/** Most rules listed under "also matched", per effect. */
const MAX_LISTED = 5

/**
 * A multi-line answer for operators (`edge-gateway policy explain`): ALLOW or
 * DENY, the reason in words, the deciding rule with its limits, and the other
 * deny and allow rules that matched. Never includes a payload.
 */
export function explain(engine: PolicyEngine, principal: Principal, request: PolicyRequest): string {
  const decision = engine.decide(principal, request)
  const matches = engine.matching(principal, request)
  const lines = [
    `${decision.allowed ? 'ALLOW' : 'DENY'} ${describeRequest(request)}`,
    `  by ${describePrincipal(principal)}`,
    `Reason: ${reason(decision, request)}`,
  ]
  if (decision.rule) {
    const rule = decision.rule
    lines.push(`Deciding rule: ${ruleTitle(rule)}`)
    lines.push(`  who: ${describeWho(rule.who)}`)
    const filter = engine.ruleFilter(rule, principal)
    lines.push(`  topic: ${rule.topic}${filter === rule.topic ? '' : ` (for this client: ${filter})`}`)
    lines.push(`  action: ${rule.action}, effect: ${rule.effect}`)
    if (rule.effect === 'allow') lines.push(`  limits: ${describeLimits(rule)}`)
  } else {
    lines.push('Deciding rule: none')
  }
  const others = (rules: ReadonlyArray<CompiledRule>) => rules.filter((r) => r !== decision.rule)
  lines.push(...listRules('deny', others(matches.deny)), ...listRules('allow', others(matches.allow)))
  return lines.join('\n')
}

function describeRequest(request: PolicyRequest): string {
  if (request.action === 'subscribe') return `subscribe "${request.topic}" (qos ${request.qos})`
  const retain = request.retain ? ', retain' : ''
  return `publish "${request.topic}" (qos ${request.qos}${retain}, ${request.payloadBytes} bytes)`
}

function describePrincipal(p: Principal): string {
  const username = p.username === undefined ? 'no username' : `username "${p.username}"`
  const groups = p.groups.length === 0 ? 'no groups' : `groups ${p.groups.map((g) => `"${g}"`).join(', ')}`
  return `device "${p.deviceId}" (clientId "${p.clientId}", ${username}, ${groups})`
}

function reason(decision: Decision, request: PolicyRequest): string {
  if (decision.allowed) {
    if (request.action === 'publish')
      return 'an allow rule matches the topic and the message is within its limits'
    const capped = decision.grantedQos < request.qos ? " (capped by the rule's maxQos)" : ''
    return `an allow rule covers the requested filter; granted at qos ${decision.grantedQos}${capped}`
  }
  const rule = decision.rule
  switch (decision.reason) {
    case 'no_rule':
      if (!wellFormed(request)) {
        return request.action === 'publish'
          ? 'the topic is not a valid topic name (empty, or with +, # or NUL)'
          : 'the topic filter is not valid (+ and # must fill a level, # must be last)'
      }
      return 'no allow rule matches (deny unless allowed)'
    case 'dollar':
      return 'a topic starting with "$" matches only rules whose filter starts with "$", and none allows it'
    case 'topic_too_long':
      return `the ${request.action === 'publish' ? 'topic' : 'filter'} is ${Buffer.byteLength(request.topic)} bytes, over the policy's maxTopicBytes`
    case 'deny_rule':
      return request.action === 'subscribe'
        ? 'a deny rule overlaps the requested filter (a deny rule wins over any allow)'
        : 'a deny rule matches the topic (a deny rule wins over any allow)'
    case 'qos':
      return `QoS ${request.qos} is above the rule's maxQos ${rule?.maxQos}`
    case 'retain':
      return 'the retain flag is set and the rule does not allow retained messages'
    case 'size': {
      const bytes = request.action === 'publish' ? request.payloadBytes : 0
      return `the payload (${bytes} bytes) is larger than the rule's maxPayloadBytes ${rule?.maxPayloadBytes}`
    }
  }
}

function wellFormed(request: PolicyRequest): boolean {
  if (request.action === 'publish') return isValidTopicName(request.topic)
  return validateFilter(request.topic, { substitutions: false }) === null
}

function ruleTitle(rule: CompiledRule): string {
  const label = rule.name === undefined ? rule.label : `"${rule.label}"`
  return `${label} (rules[${rule.index}])`
}

function describeLimits(rule: CompiledRule): string {
  const parts = [`maxQos ${rule.maxQos}`, rule.retain ? 'retain allowed' : 'retain not allowed']
  if (rule.maxPayloadBytes !== undefined) parts.push(`maxPayloadBytes ${rule.maxPayloadBytes}`)
  const messages = rule.rate?.messages
  if (messages) parts.push(`rate ${messages.perSecond} msg/s (burst ${messages.burst ?? messages.perSecond})`)
  const bytes = rule.rate?.bytes
  if (bytes) parts.push(`rate ${bytes.perSecond} bytes/s (burst ${bytes.burst ?? bytes.perSecond})`)
  if (rule.maxSubscribers !== undefined) parts.push(`maxSubscribers ${rule.maxSubscribers}`)
  return parts.join(', ')
}

function listRules(effect: 'deny' | 'allow', rules: ReadonlyArray<CompiledRule>): string[] {
  if (rules.length === 0) return [`Also matched ${effect} rules: none`]
  const lines = [`Also matched ${effect} rules (${rules.length}):`]
  for (const rule of rules.slice(0, MAX_LISTED)) {
    lines.push(`  ${ruleTitle(rule)}: ${describeWho(rule.who)} ${rule.action} ${rule.topic}`)
  }
  if (rules.length > MAX_LISTED) lines.push(`  ... and ${rules.length - MAX_LISTED} more`)
  return lines
}
