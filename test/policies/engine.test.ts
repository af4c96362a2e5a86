import { describe, expect, it } from 'vitest'
import { compilePolicy } from '../../policies/engine.js'
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

describe('PolicyEngine: publish limits', () => {
  const engine = compilePolicy(
    policy({
      who: 'everyone',
      topic: 't/#',
      action: 'publish',
      maxQos: 1,
      retain: false,
      maxPayloadBytes: 100,
    }),
  )
  const rule = engine.rules[0]
  const p = principal()

  it('qos: at maxQos allowed, above refused', () => {
    expect(engine.decide(p, pub('t/a', { qos: 1 }))).toMatchObject({ allowed: true, grantedQos: 1 })
    expect(engine.decide(p, pub('t/a', { qos: 2 }))).toEqual({ allowed: false, reason: 'qos', rule })
  })

  it('retain: refused where the rule forbids it, allowed where it permits it', () => {
    expect(engine.decide(p, pub('t/a', { retain: true }))).toEqual({ allowed: false, reason: 'retain', rule })
    const permissive = compilePolicy(policy({ who: 'everyone', topic: 't/#', action: 'publish' }))
    expect(permissive.decide(p, pub('t/a', { retain: true })).allowed).toBe(true)
  })

  it('size: at maxPayloadBytes allowed, one byte over refused', () => {
    expect(engine.decide(p, pub('t/a', { payloadBytes: 100 })).allowed).toBe(true)
    expect(engine.decide(p, pub('t/a', { payloadBytes: 101 }))).toEqual({
      allowed: false,
      reason: 'size',
      rule,
    })
    expect(engine.decide(p, pub('t/a', { payloadBytes: 0 })).allowed).toBe(true)
  })

  it('defaults: qos 2, retain and any size allowed', () => {
    const open = compilePolicy(policy({ who: 'everyone', topic: 't/#', action: 'publish' }))
    expect(open.decide(p, pub('t/a', { qos: 2, retain: true, payloadBytes: 268_435_455 }))).toMatchObject({
      allowed: true,
      grantedQos: 2,
    })
  })
})

describe('PolicyEngine: subscribe', () => {
  const engine = compilePolicy(
    policy(
      { who: 'everyone', topic: 'a/+/c', action: 'subscribe', maxQos: 1 },
      { who: 'everyone', topic: 'b/#', action: 'subscribe' },
    ),
  )
  const p = principal()

  it('grants the lower of the requested QoS and maxQos', () => {
    expect(engine.decide(p, sub('a/b/c', 0))).toMatchObject({ allowed: true, grantedQos: 0 })
    expect(engine.decide(p, sub('a/b/c', 1))).toMatchObject({ allowed: true, grantedQos: 1 })
    expect(engine.decide(p, sub('a/b/c', 2))).toMatchObject({ allowed: true, grantedQos: 1 })
    expect(engine.decide(p, sub('b/x', 2))).toMatchObject({ allowed: true, grantedQos: 2 })
  })

  it('allows only a filter the rule covers', () => {
    expect(engine.decide(p, sub('a/+/c')).allowed).toBe(true)
    expect(engine.decide(p, sub('a/#'))).toEqual({ allowed: false, reason: 'no_rule' })
    expect(engine.decide(p, sub('a/b/+'))).toEqual({ allowed: false, reason: 'no_rule' })
    expect(engine.decide(p, sub('b'))).toMatchObject({ allowed: true, ruleFilter: 'b/#' })
    expect(engine.decide(p, sub('b/+/#'))).toMatchObject({ allowed: true })
    expect(engine.decide(p, sub('#'))).toEqual({ allowed: false, reason: 'no_rule' })
  })

  it('ignores publish limits', () => {
    const limited = compilePolicy(
      policy({ who: 'everyone', topic: 'x', action: 'both', retain: false, maxPayloadBytes: 0 }),
    )
    expect(limited.decide(p, sub('x'))).toMatchObject({ allowed: true })
  })
})

describe('PolicyEngine: substitutions', () => {
  const engine = compilePolicy(
    policy(
      { who: 'everyone', topic: 'devices/%d/#', action: 'both' },
      { who: 'everyone', topic: 'clients/%c/inbox', action: 'subscribe' },
      { who: 'everyone', topic: 'users/%u/+', action: 'publish' },
    ),
  )

  it('%d matches only the device id and is substituted in ruleFilter', () => {
    expect(engine.decide(principal(), pub('devices/dev-1/temp'))).toMatchObject({
      allowed: true,
      ruleFilter: 'devices/dev-1/#',
    })
    expect(engine.decide(principal(), pub('devices/dev-2/temp'))).toEqual({
      allowed: false,
      reason: 'no_rule',
    })
    expect(engine.decide(principal(), sub('devices/+/temp'))).toEqual({ allowed: false, reason: 'no_rule' })
    expect(engine.decide(principal(), sub('devices/dev-1/#'))).toMatchObject({ allowed: true })
  })

  it('%c matches only the client id', () => {
    expect(engine.decide(principal(), sub('clients/cl-1/inbox'))).toMatchObject({
      allowed: true,
      ruleFilter: 'clients/cl-1/inbox',
    })
    expect(engine.decide(principal(), sub('clients/cl-2/inbox'))).toEqual({
      allowed: false,
      reason: 'no_rule',
    })
  })

  it('%u matches only the username, and never when there is none', () => {
    expect(engine.decide(principal(), pub('users/alice/x'))).toMatchObject({
      allowed: true,
      ruleFilter: 'users/alice/+',
    })
    expect(engine.decide(principal(), pub('users/bob/x'))).toEqual({ allowed: false, reason: 'no_rule' })
    const anonymous = principal({ username: undefined })
    expect(engine.decide(anonymous, pub('users/%u/x'))).toEqual({ allowed: false, reason: 'no_rule' })
    expect(engine.decide(anonymous, pub('users//x'))).toEqual({ allowed: false, reason: 'no_rule' })
  })

  it('a value that is not one level (contains /, + or #) matches nothing', () => {
    expect(engine.decide(principal({ deviceId: 'a/b' }), pub('devices/a/b/x'))).toEqual({
      allowed: false,
      reason: 'no_rule',
    })
    expect(engine.decide(principal({ clientId: '+' }), sub('clients/+/inbox'))).toEqual({
      allowed: false,
      reason: 'no_rule',
    })
  })
})

describe('PolicyEngine: who', () => {
  const engine = compilePolicy(
    policy(
      { who: { device: 'dev-1' }, topic: 'device', action: 'publish' },
      { who: { username: 'alice' }, topic: 'username', action: 'publish' },
      { who: { clientId: 'cl-1' }, topic: 'client', action: 'publish' },
      { who: { group: 'cams' }, topic: 'group', action: 'publish' },
      { who: 'anonymous', topic: 'anonymous', action: 'publish' },
      { who: 'everyone', topic: 'everyone', action: 'publish' },
    ),
  )
  const alice = principal({ groups: ['cams'] })
  const other = principal({ deviceId: 'dev-2', clientId: 'cl-2', username: 'bob', groups: ['lights'] })
  const anonymous = principal({ deviceId: 'dev-3', clientId: 'cl-3', username: undefined })

  it.each([
    ['device', 0],
    ['username', 1],
    ['client', 2],
    ['group', 3],
    ['everyone', 5],
  ])('%s rule applies to its principal', (topic, index) => {
    expect(engine.decide(alice, pub(topic))).toMatchObject({ allowed: true, rule: engine.rules[index] })
  })

  it.each(['device', 'username', 'client', 'group', 'anonymous'])(
    '%s rule ignores another principal',
    (topic) => {
      expect(engine.decide(other, pub(topic))).toEqual({ allowed: false, reason: 'no_rule' })
    },
  )

  it('anonymous applies only without a username; everyone applies to all', () => {
    expect(engine.decide(alice, pub('anonymous'))).toEqual({ allowed: false, reason: 'no_rule' })
    expect(engine.decide(anonymous, pub('anonymous'))).toMatchObject({ allowed: true, rule: engine.rules[4] })
    expect(engine.decide(anonymous, pub('everyone'))).toMatchObject({ allowed: true, rule: engine.rules[5] })
    expect(engine.decide(other, pub('everyone'))).toMatchObject({ allowed: true, rule: engine.rules[5] })
  })

  it('a principal in several groups gets each group rule', () => {
    const multi = compilePolicy(
      policy(
        { who: { group: 'a' }, topic: 'a', action: 'publish' },
        { who: { group: 'b' }, topic: 'b', action: 'publish' },
      ),
    )
    const p = principal({ groups: ['b', 'a', 'b'] })
    expect(multi.decide(p, pub('a'))).toMatchObject({ allowed: true, rule: multi.rules[0] })
    expect(multi.decide(p, pub('b'))).toMatchObject({ allowed: true, rule: multi.rules[1] })
    expect(multi.decide(principal({ groups: [] }), pub('a'))).toEqual({ allowed: false, reason: 'no_rule' })
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
