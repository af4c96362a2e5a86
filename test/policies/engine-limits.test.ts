import { describe, expect, it } from 'vitest'
import { compilePolicy } from '../../policies/engine.js'
import { policy, principal, pub, sub } from './fixtures.js'

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

describe('PolicyEngine: maxTopicBytes', () => {
  const p = principal()
  const both = { who: 'everyone', topic: 't/#', action: 'both' } as const

  it('defaults to 1,024 bytes of topic or filter: at it allowed, one byte over refused as topic_too_long', () => {
    const engine = compilePolicy(policy(both))
    const at = `t/${'a'.repeat(1022)}`
    expect(engine.decide(p, pub(at)).allowed).toBe(true)
    expect(engine.decide(p, sub(at)).allowed).toBe(true)
    expect(engine.decide(p, pub(`${at}b`))).toEqual({ allowed: false, reason: 'topic_too_long' })
    expect(engine.decide(p, sub(`${at}/#`))).toEqual({ allowed: false, reason: 'topic_too_long' })
  })

  it('counts UTF-8 bytes, not characters, and takes the policy value', () => {
    const engine = compilePolicy({ ...policy(both), maxTopicBytes: 16 })
    expect(engine.decide(p, pub('t/éééééééé')).allowed).toEqual(false) // 2 + 16 bytes
    expect(engine.decide(p, pub('t/ééééééé')).allowed).toBe(true) // 2 + 14 bytes
  })
})
