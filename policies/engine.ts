import { formatPath } from '../config/format-issue.js'
import { deepFreeze } from '../config/freeze.js'
import { PARSE_ONCE } from '../core/parse-once.js'
import { compileRule, filterTemplate, substituteFilter } from './compiled-rule.js'
import { PolicyError } from './errors.js'
import { formatPolicyIssue } from './format-issue.js'
import { type Matches, PrincipalIndex } from './principal-index.js'
import { type Policy, policySchema } from './schema.js'
import { validateFilter } from './topic-filter.js'
import type { CompiledRule, Decision, PolicyRequest, Principal } from './types.js'

/** The rules that concern a request, each list in file order. */
export interface RuleMatches {
  /** Deny rules whose filter overlaps the request. */
  readonly deny: ReadonlyArray<CompiledRule>
  /** Allow rules whose filter matches the topic (publish) or covers the requested filter (subscribe). */
  readonly allow: ReadonlyArray<CompiledRule>
}

const DENIED_NO_RULE: Decision = Object.freeze({ allowed: false, reason: 'no_rule' })
const DENIED_DOLLAR: Decision = Object.freeze({ allowed: false, reason: 'dollar' })
const DENIED_TOO_LONG: Decision = Object.freeze({ allowed: false, reason: 'topic_too_long' })

/**
 * Decides PUBLISH and SUBSCRIBE requests against a compiled policy. Deny unless
 * a rule allows; a deny rule wins over any allow; among allow rules the first
 * in file order decides and its limits apply.
 *
 * A SUBSCRIBE is allowed by a rule whose filter covers every topic the
 * requested filter can match, and refused by a deny rule whose filter matches
 * any of them (`sensors/#` is refused when `sensors/secret` is denied: the
 * subscription would deliver it). A `$` topic matches only rules whose filter
 * begins with `$`. Rate and subscriber limits are kept by `RateLimiter` and
 * `SubscriberLimits`, not here.
 *
 * Rules are indexed by the principal they name, each with its own tries, so a
 * decision costs the same with 10 or 100,000 rules for other principals.
 * Immutable: a reload compiles a new engine.
 */
export class PolicyEngine {
  readonly policy: Policy
  readonly rules: ReadonlyArray<CompiledRule>
  private readonly index: PrincipalIndex
  /** Per rule index: its filter split around substitution levels, for `ruleFilter`. */
  private readonly templates: ReadonlyArray<ReadonlyArray<string> | undefined>
  private readonly scratch: Matches = { deny: [], allow: [] }

  private constructor(policy: Policy, rules: ReadonlyArray<CompiledRule>, index: PrincipalIndex) {
    this.policy = policy
    this.rules = rules
    this.index = index
    this.templates = rules.map((rule) => filterTemplate(rule.topic))
  }

  /**
   * Compiles a policy already checked by `policySchema`. Throws PolicyError
   * naming the first bad rule. Keeps a deeply frozen copy, or the policy itself
   * when it is frozen already (taken as deeply frozen, like `deepFreeze` does).
   */
  static compile(policy: Policy): PolicyEngine {
    const frozen = Object.isFrozen(policy) ? policy : deepFreeze(structuredClone(policy))
    const index = new PrincipalIndex()
    const rules = frozen.rules.map((rule, i) => {
      const problem = validateFilter(rule.topic)
      if (problem !== null) {
        throw new PolicyError(
          'POLICY_ERR_BAD_FILTER',
          `${ruleRef(i, rule.name)}.topic: "${rule.topic}" is not a valid topic filter: ${problem}`,
        )
      }
      const compiled = compileRule(rule, i)
      index.add(compiled)
      return compiled
    })
    index.built()
    return new PolicyEngine(frozen, Object.freeze(rules), index)
  }

  decide(principal: Principal, request: PolicyRequest): Decision {
    // UTF-8 takes at most 3 bytes per UTF-16 unit: only a long string is measured.
    const max = this.policy.maxTopicBytes
    if (request.topic.length * 3 > max && Buffer.byteLength(request.topic) > max) return DENIED_TOO_LONG
    const levels = requestLevels(request)
    if (levels === undefined) return DENIED_NO_RULE
    // Reused between calls: decide never yields, and never lets these escape.
    const matches = this.scratch
    if (matches.deny.length > 0) matches.deny.length = 0
    if (matches.allow.length > 0) matches.allow.length = 0
    this.index.collect(principal, request.action, levels, matches)

    const deny = first(matches.deny)
    if (deny) return { allowed: false, reason: 'deny_rule', rule: deny }
    const rule = first(matches.allow)
    if (!rule) return levels[0]!.startsWith('$') ? DENIED_DOLLAR : DENIED_NO_RULE

    if (request.action === 'subscribe') {
      const grantedQos = Math.min(request.qos, rule.maxQos) as 0 | 1 | 2
      return { allowed: true, rule, grantedQos, ruleFilter: this.ruleFilter(rule, principal) }
    }
    if (request.qos > rule.maxQos) return { allowed: false, reason: 'qos', rule }
    if (request.retain && !rule.retain) return { allowed: false, reason: 'retain', rule }
    if (rule.maxPayloadBytes !== undefined && request.payloadBytes > rule.maxPayloadBytes) {
      return { allowed: false, reason: 'size', rule }
    }
    return { allowed: true, rule, grantedQos: request.qos, ruleFilter: this.ruleFilter(rule, principal) }
  }

  /** Every rule that concerns the request (for `explain`), not only the deciding one. */
  matching(principal: Principal, request: PolicyRequest): RuleMatches {
    const levels = requestLevels(request)
    if (levels === undefined) return { deny: [], allow: [] }
    const matches: Matches = { deny: [], allow: [] }
    this.index.collect(principal, request.action, levels, matches)
    const byIndex = (a: CompiledRule, b: CompiledRule) => a.index - b.index
    return { deny: matches.deny.sort(byIndex), allow: matches.allow.sort(byIndex) }
  }

  /** The rule's filter with `%c`, `%u`, `%d` substituted for this principal. */
  ruleFilter(rule: CompiledRule, principal: Principal): string {
    return substituteFilter(rule.topic, this.templates[rule.index], principal)
  }
}

/**
 * Validates a policy file's content (already parsed from YAML or JSON) and
 * compiles it. Throws PolicyError with one line per problem, like
 * `rules[3].maxQos: expected one of 0, 1, 2, got 3 (number)`.
 */
export function compilePolicy(input: unknown): PolicyEngine {
  const result = policySchema.safeParse(input, PARSE_ONCE)
  if (!result.success) {
    const lines = result.error.issues.map((issue) => formatPolicyIssue(issue, input))
    throw new PolicyError('POLICY_ERR_SCHEMA', lines.join('; '))
  }
  return PolicyEngine.compile(deepFreeze(result.data))
}

function ruleRef(index: number, name: string | undefined): string {
  const path = formatPath(['rules', index])
  return name === undefined ? path : `${path} ("${name}")`
}

/**
 * The request's levels, or undefined for a malformed topic name or filter
 * (denied): a PUBLISH topic without wildcards, a SUBSCRIBE filter with `+` and
 * `#` each alone in a level and `#` last; neither empty nor with NUL.
 */
function requestLevels(request: PolicyRequest): string[] | undefined {
  const topic = request.topic
  if (topic.length === 0 || topic.includes('\u0000')) return undefined
  const levels = topic.split('/')
  const hasPlus = topic.includes('+')
  const hasHash = topic.includes('#')
  if (!hasPlus && !hasHash) return levels
  if (request.action === 'publish') return undefined
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!
    if (hasPlus && level !== '+' && level.includes('+')) return undefined
    if (hasHash && level.includes('#') && (level !== '#' || i !== levels.length - 1)) return undefined
  }
  return levels
}

function first(rules: ReadonlyArray<CompiledRule>): CompiledRule | undefined {
  let best = rules[0]
  for (let i = 1; i < rules.length; i++) {
    const rule = rules[i]!
    if (rule.index < best!.index) best = rule
  }
  return best
}
