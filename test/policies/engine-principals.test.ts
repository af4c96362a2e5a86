import { describe, expect, it } from 'vitest'
import { compilePolicy } from '../../policies/engine.js'
import { policy, principal, pub, sub } from './fixtures.js'

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

describe('PolicyEngine: many principals', () => {
  const rules = []
  for (let n = 0; n < 20_000; n++) {
    rules.push({
      who: { device: `dev-${n}` },
      topic: `devices/dev-${n}/#`,
      action: 'both' as const,
      maxQos: 1 as const,
    })
    if (n % 10 === 0) {
      rules.push({
        who: { device: `dev-${n}` },
        topic: `devices/dev-${n}/locked`,
        action: 'both' as const,
        effect: 'deny' as const,
      })
    }
  }
  rules.push({
    who: 'everyone' as const,
    topic: 'devices/+/status',
    action: 'publish' as const,
    maxQos: 0 as const,
  })
  const engine = compilePolicy(policy(...rules))
  const dev = (n: number) => principal({ deviceId: `dev-${n}`, clientId: `c-${n}`, username: `u-${n}` })

  it('each device gets its own rules and none of the others', () => {
    expect(engine.decide(dev(12_345), pub('devices/dev-12345/t', { qos: 1 }))).toMatchObject({
      allowed: true,
      rule: { index: 13_580, who: { device: 'dev-12345' } },
    })
    expect(engine.decide(dev(12_345), pub('devices/dev-12346/t'))).toEqual({
      allowed: false,
      reason: 'no_rule',
    })
    expect(engine.decide(dev(12_340), pub('devices/dev-12340/locked'))).toMatchObject({
      allowed: false,
      reason: 'deny_rule',
    })
    expect(engine.decide(dev(12_341), pub('devices/dev-12341/locked')).allowed).toBe(true)
  })

  it('only the rules of the asking principal are candidates', () => {
    const matches = engine.matching(dev(7), pub('devices/dev-7/status'))
    expect(matches.allow.map((r) => r.index)).toEqual([8, rules.length - 1])
    expect(matches.deny).toEqual([])
  })
})
