import { describe, expect, it } from 'vitest'
import { compilePolicy } from '../../policies/engine.js'
import { explain } from '../../policies/explain.js'
import { policy, principal, pub, sub } from './fixtures.js'

const engine = compilePolicy(
  policy(
    {
      name: 'own-data',
      who: 'everyone',
      topic: 'devices/%d/#',
      action: 'both',
      maxQos: 1,
      retain: false,
      maxPayloadBytes: 1024,
      rate: { messages: { perSecond: 10, burst: 20 }, bytes: { perSecond: 5000 } },
      maxSubscribers: 3,
    },
    { who: { group: 'cams' }, topic: 'devices/#', action: 'both' },
    { name: 'no-firmware', who: 'everyone', topic: 'devices/+/firmware', action: 'publish', effect: 'deny' },
  ),
)
const cam = principal({ groups: ['cams'] })

describe('explain', () => {
  it('ALLOW names the deciding rule with its limits and the other rules that matched', () => {
    expect(explain(engine, cam, pub('devices/dev-1/t', { qos: 1, payloadBytes: 12 }))).toBe(
      [
        'ALLOW publish "devices/dev-1/t" (qos 1, 12 bytes)',
        '  by device "dev-1" (clientId "cl-1", username "alice", groups "cams")',
        'Reason: an allow rule matches the topic and the message is within its limits',
        'Deciding rule: "own-data" (rules[0])',
        '  who: everyone',
        '  topic: devices/%d/# (for this client: devices/dev-1/#)',
        '  action: both, effect: allow',
        '  limits: maxQos 1, retain not allowed, maxPayloadBytes 1024, rate 10 msg/s (burst 20), ' +
          'rate 5000 bytes/s (burst 5000), maxSubscribers 3',
        'Also matched deny rules: none',
        'Also matched allow rules (1):',
        '  rule #1 (rules[1]): group "cams" both devices/#',
      ].join('\n'),
    )
  })

  it('DENY by a deny rule names it and lists the allow rules it overrode', () => {
    const text = explain(engine, cam, pub('devices/dev-1/firmware'))
    expect(text.split('\n').slice(0, 4)).toEqual([
      'DENY publish "devices/dev-1/firmware" (qos 0, 10 bytes)',
      '  by device "dev-1" (clientId "cl-1", username "alice", groups "cams")',
      'Reason: a deny rule matches the topic (a deny rule wins over any allow)',
      'Deciding rule: "no-firmware" (rules[2])',
    ])
    expect(text).toContain(
      'Also matched allow rules (2):\n  "own-data" (rules[0]): everyone both devices/%d/#\n',
    )
  })

  it('DENY for size, qos and retain says which limit', () => {
    expect(explain(engine, cam, pub('devices/dev-1/t', { payloadBytes: 2000 }))).toContain(
      "Reason: the payload (2000 bytes) is larger than the rule's maxPayloadBytes 1024\n" +
        'Deciding rule: "own-data" (rules[0])',
    )
    expect(explain(engine, cam, pub('devices/dev-1/t', { qos: 2 }))).toContain(
      "Reason: QoS 2 is above the rule's maxQos 1",
    )
    expect(explain(engine, cam, pub('devices/dev-1/t', { retain: true }))).toContain(
      'Reason: the retain flag is set and the rule does not allow retained messages',
    )
  })

  it('a subscribe shows the granted QoS', () => {
    expect(explain(engine, cam, sub('devices/dev-1/#', 2))).toContain(
      "Reason: an allow rule covers the requested filter; granted at qos 1 (capped by the rule's maxQos)",
    )
  })

  it('no rule and $ topics', () => {
    const anonymous = principal({ username: undefined })
    expect(explain(engine, anonymous, sub('other'))).toBe(
      [
        'DENY subscribe "other" (qos 0)',
        '  by device "dev-1" (clientId "cl-1", no username, no groups)',
        'Reason: no allow rule matches (deny unless allowed)',
        'Deciding rule: none',
        'Also matched deny rules: none',
        'Also matched allow rules: none',
      ].join('\n'),
    )
    expect(explain(engine, cam, sub('$SYS/#'))).toContain(
      'Reason: a topic starting with "$" matches only rules whose filter starts with "$", and none allows it',
    )
  })

  it('says when the topic itself is malformed', () => {
    expect(explain(engine, cam, pub('devices/+/t'))).toContain(
      'Reason: the topic is not a valid topic name (empty, or with +, # or NUL)',
    )
    expect(explain(engine, cam, sub('devices/#/t'))).toContain(
      'Reason: the topic filter is not valid (+ and # must fill a level, # must be last)',
    )
  })

  it('lists at most 5 other rules of each effect', () => {
    const rules = Array.from({ length: 8 }, (_, i) => ({
      who: 'everyone' as const,
      topic: i % 2 === 0 ? 'x/#' : 'x/+',
      action: 'publish' as const,
      effect: 'deny' as const,
    }))
    const text = explain(compilePolicy(policy(...rules)), principal(), pub('x/y'))
    expect(text).toContain('Deciding rule: rule #0 (rules[0])')
    expect(text).toContain(
      [
        'Also matched deny rules (7):',
        '  rule #1 (rules[1]): everyone publish x/+',
        '  rule #2 (rules[2]): everyone publish x/#',
        '  rule #3 (rules[3]): everyone publish x/+',
        '  rule #4 (rules[4]): everyone publish x/#',
        '  rule #5 (rules[5]): everyone publish x/+',
        '  ... and 2 more',
      ].join('\n'),
    )
  })
})
