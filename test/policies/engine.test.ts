import { describe, expect, it } from 'vitest'
import { compilePolicy, PolicyEngine } from '../../policies/engine.js'
import { policySchema } from '../../policies/schema.js'
import { policy, principal, pub, sub } from './fixtures.js'

describe('PolicyEngine: deny unless allowed', () => {
  it('denies with no_rule when nothing matches, and allows a matching rule', () => {
    const engine = compilePolicy(policy({ who: 'everyone', topic: 'a/#', action: 'publish' }))
    expect(engine.decide(principal(), pub('b'))).toEqual({ allowed: false, reason: 'no_rule' })
    expect(engine.decide(principal(), pub('a/x'))).toEqual({
      allowed: true,
      rule: engine.rules[0],
      grantedQos: 0,
      ruleFilter: 'a/#',
    })
  })

  it('denies a malformed topic name or filter', () => {
    const engine = compilePolicy(policy({ who: 'everyone', topic: '#', action: 'both' }))
    expect(engine.decide(principal(), pub('a/+'))).toEqual({ allowed: false, reason: 'no_rule' })
    expect(engine.decide(principal(), pub(''))).toEqual({ allowed: false, reason: 'no_rule' })
    expect(engine.decide(principal(), sub('a/#/b'))).toEqual({ allowed: false, reason: 'no_rule' })
    expect(engine.decide(principal(), sub('a/#')).allowed).toBe(true)
  })

  it('applies the action: publish, subscribe, both', () => {
    const engine = compilePolicy(
      policy(
        { who: 'everyone', topic: 'p', action: 'publish' },
        { who: 'everyone', topic: 's', action: 'subscribe' },
        { who: 'everyone', topic: 'b', action: 'both' },
      ),
    )
    const p = principal()
    expect(engine.decide(p, pub('p')).allowed).toBe(true)
    expect(engine.decide(p, sub('p'))).toEqual({ allowed: false, reason: 'no_rule' })
    expect(engine.decide(p, pub('s'))).toEqual({ allowed: false, reason: 'no_rule' })
    expect(engine.decide(p, sub('s')).allowed).toBe(true)
    expect(engine.decide(p, pub('b')).allowed).toBe(true)
    expect(engine.decide(p, sub('b')).allowed).toBe(true)
  })
})

describe('PolicyEngine: $ topics', () => {
  const engine = compilePolicy(
    policy(
      { who: 'everyone', topic: '#', action: 'both' },
      { who: 'everyone', topic: '+/status', action: 'both' },
      { who: { group: 'ops' }, topic: '$SYS/broker/#', action: 'subscribe' },
    ),
  )

  it('wildcard rules never match a $ topic: reason dollar', () => {
    expect(engine.decide(principal(), pub('$SYS/status'))).toEqual({ allowed: false, reason: 'dollar' })
    expect(engine.decide(principal(), sub('$SYS/broker/uptime'))).toEqual({
      allowed: false,
      reason: 'dollar',
    })
  })

  it('a rule whose filter begins with $ matches $ topics', () => {
    const ops = principal({ groups: ['ops'] })
    expect(engine.decide(ops, sub('$SYS/broker/uptime'))).toMatchObject({
      allowed: true,
      rule: engine.rules[2],
    })
    expect(engine.decide(ops, sub('$SYS/broker/#'))).toMatchObject({ allowed: true, rule: engine.rules[2] })
    expect(engine.decide(ops, sub('$SYS/#'))).toEqual({ allowed: false, reason: 'dollar' })
  })

  it('a subscription to # is covered by # but does not reach $ topics', () => {
    expect(engine.decide(principal(), sub('#'))).toMatchObject({ allowed: true, rule: engine.rules[0] })
  })
})

describe('PolicyEngine: deny wins, first allow wins', () => {
  const engine = compilePolicy(
    policy(
      { name: 'wide', who: 'everyone', topic: 'sensors/#', action: 'both', maxQos: 0 },
      { name: 'precise', who: { device: 'dev-1' }, topic: 'sensors/dev-1/#', action: 'both', maxQos: 2 },
      { name: 'no-secrets', who: 'everyone', topic: 'sensors/secret', action: 'both', effect: 'deny' },
      {
        name: 'no-firmware',
        who: 'everyone',
        topic: 'sensors/+/firmware',
        action: 'publish',
        effect: 'deny',
      },
    ),
  )

  it('a deny rule wins over an earlier allow rule', () => {
    expect(engine.decide(principal(), pub('sensors/secret'))).toEqual({
      allowed: false,
      reason: 'deny_rule',
      rule: engine.rules[2],
    })
    expect(engine.decide(principal(), pub('sensors/dev-1/firmware'))).toEqual({
      allowed: false,
      reason: 'deny_rule',
      rule: engine.rules[3],
    })
  })

  it('a deny rule for publish does not refuse subscribe', () => {
    expect(engine.decide(principal(), sub('sensors/dev-1/firmware'))).toMatchObject({
      allowed: true,
      rule: engine.rules[0],
    })
  })

  it('a subscription overlapping a deny rule is refused', () => {
    expect(engine.decide(principal(), sub('sensors/#'))).toEqual({
      allowed: false,
      reason: 'deny_rule',
      rule: engine.rules[2],
    })
    expect(engine.decide(principal(), sub('sensors/+'))).toMatchObject({ reason: 'deny_rule' })
    expect(engine.decide(principal(), sub('sensors/public'))).toMatchObject({ allowed: true })
  })

  it('the first matching allow rule decides, with its limits', () => {
    expect(engine.decide(principal(), pub('sensors/dev-1/t', { qos: 1 }))).toEqual({
      allowed: false,
      reason: 'qos',
      rule: engine.rules[0],
    })
    expect(engine.decide(principal(), sub('sensors/dev-1/t', 2))).toMatchObject({
      allowed: true,
      rule: engine.rules[0],
      grantedQos: 0,
    })
  })

  it('a later rule decides when the first does not match', () => {
    const reordered = compilePolicy(
      policy(
        { who: { device: 'dev-1' }, topic: 'sensors/dev-1/#', action: 'both', maxQos: 2 },
        { who: 'everyone', topic: 'sensors/#', action: 'both', maxQos: 0 },
      ),
    )
    expect(reordered.decide(principal(), pub('sensors/dev-1/t', { qos: 2 }))).toMatchObject({
      allowed: true,
      rule: reordered.rules[0],
    })
    expect(reordered.decide(principal(), pub('sensors/dev-2/t', { qos: 2 }))).toEqual({
      allowed: false,
      reason: 'qos',
      rule: reordered.rules[1],
    })
  })
})

describe('PolicyEngine: compiled state', () => {
  it('labels rules, keeps file order and freezes', () => {
    const engine = compilePolicy(
      policy(
        { name: 'first', who: 'everyone', topic: 'a', action: 'publish' },
        { who: 'everyone', topic: 'b', action: 'subscribe' },
      ),
    )
    expect(engine.rules.map((r) => [r.index, r.label])).toEqual([
      [0, 'first'],
      [1, 'rule #1'],
    ])
    expect(engine.rules[1]).toMatchObject({ effect: 'allow', maxQos: 2, retain: true })
    expect(Object.isFrozen(engine.rules[0])).toBe(true)
    expect(Object.isFrozen(engine.policy.rules)).toBe(true)
    expect(engine.policy.deniedPublish).toBe('disconnect')
  })
})

describe('PolicyEngine.compile', () => {
  it("keeps a frozen copy and leaves the caller's policy unfrozen", () => {
    const parsed = policySchema.parse(policy({ who: 'everyone', topic: 'a', action: 'publish' }))
    const engine = PolicyEngine.compile(parsed)
    expect(Object.isFrozen(parsed)).toBe(false)
    expect(Object.isFrozen(engine.policy.rules[0])).toBe(true)
    parsed.rules[0]!.topic = 'b'
    expect(engine.decide(principal(), pub('a')).allowed).toBe(true)
  })
})
