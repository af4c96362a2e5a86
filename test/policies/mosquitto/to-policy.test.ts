import { describe, expect, it } from 'vitest'
import { PolicyEngine } from '../../../policies/engine.js'
import { parseAclFile } from '../../../policies/mosquitto/acl-file.js'
import { aclToPolicy } from '../../../policies/mosquitto/to-policy.js'
import { policySchema } from '../../../policies/schema.js'
import type { Principal } from '../../../policies/types.js'

function convert(text: string, options?: Parameters<typeof aclToPolicy>[1]) {
  return aclToPolicy(parseAclFile(text), options)
}

function engineFor(text: string): PolicyEngine {
  return PolicyEngine.compile(policySchema.parse(convert(text).policy))
}

function principal(clientId: string, username?: string): Principal {
  return username === undefined
    ? { deviceId: clientId, clientId, groups: [] }
    : { deviceId: clientId, clientId, username, groups: [] }
}

function allowed(
  engine: PolicyEngine,
  who: Principal,
  action: 'publish' | 'subscribe',
  topic: string,
): boolean {
  const request =
    action === 'publish'
      ? { action, topic, qos: 0 as const, retain: false, payloadBytes: 1 }
      : { action, topic, qos: 0 as const }
  return engine.decide(who, request).allowed
}

describe('aclToPolicy: mapping', () => {
  it('maps users, anonymous lines, patterns and each access word to rules in file order', () => {
    const text = [
      'topic read public/#',
      'user alice',
      'topic read alice/in',
      'topic write alice/out',
      'topic readwrite alice/both',
      'topic deny alice/both/secret',
      'user John Smith',
      'topic readwrite room 1/temp',
      'pattern read devices/%c/in',
      'pattern write users/%u/out',
    ].join('\n')
    expect(convert(text)).toEqual({
      policy: {
        rules: [
          {
            name: 'mosquitto acl_file line 1',
            who: 'anonymous',
            topic: 'public/#',
            action: 'subscribe',
            effect: 'allow',
          },
          {
            name: 'mosquitto acl_file line 3',
            who: { username: 'alice' },
            topic: 'alice/in',
            action: 'subscribe',
            effect: 'allow',
          },
          {
            name: 'mosquitto acl_file line 4',
            who: { username: 'alice' },
            topic: 'alice/out',
            action: 'publish',
            effect: 'allow',
          },
          {
            name: 'mosquitto acl_file line 5',
            who: { username: 'alice' },
            topic: 'alice/both',
            action: 'both',
            effect: 'allow',
          },
          {
            name: 'mosquitto acl_file line 6',
            who: { username: 'alice' },
            topic: 'alice/both/secret',
            action: 'both',
            effect: 'deny',
          },
          {
            name: 'mosquitto acl_file line 8',
            who: { username: 'John Smith' },
            topic: 'room 1/temp',
            action: 'both',
            effect: 'allow',
          },
          {
            name: 'mosquitto acl_file line 9',
            who: 'everyone',
            topic: 'devices/%c/in',
            action: 'subscribe',
            effect: 'allow',
          },
          {
            name: 'mosquitto acl_file line 10',
            who: 'everyone',
            topic: 'users/%u/out',
            action: 'publish',
            effect: 'allow',
          },
        ],
      },
      unmapped: [],
    })
  })

  it('produces a policy our schema accepts and our engine compiles and decides as Mosquitto would', () => {
    const engine = engineFor(
      'topic read public/#\nuser alice\ntopic readwrite alice/#\ntopic deny alice/secret\npattern readwrite devices/%c/#\n',
    )
    const alice = principal('cam-1', 'alice')
    const anon = principal('anon-1')
    expect(allowed(engine, alice, 'publish', 'alice/x')).toBe(true)
    expect(allowed(engine, alice, 'publish', 'alice/secret')).toBe(false)
    expect(allowed(engine, alice, 'subscribe', 'alice/secret')).toBe(false)
    expect(allowed(engine, alice, 'publish', 'devices/cam-1/state')).toBe(true)
    expect(allowed(engine, alice, 'publish', 'devices/cam-2/state')).toBe(false)
    expect(allowed(engine, alice, 'subscribe', 'public/news')).toBe(false)
    expect(allowed(engine, anon, 'subscribe', 'public/news')).toBe(true)
    expect(allowed(engine, anon, 'publish', 'public/news')).toBe(false)
  })

  it('passes deniedPublish through', () => {
    expect(convert('topic a', { deniedPublish: 'drop' }).policy.deniedPublish).toBe('drop')
  })

  it('reports parse problems as skipped lines', () => {
    expect(convert('topic read ok\nfoo bar\n').unmapped).toEqual([
      {
        line: 2,
        reason:
          'not converted: the line starts with "foo"; expected `user`, `topic`, `pattern` or a # comment',
        outcome: 'skipped',
      },
    ])
  })
})

describe('aclToPolicy: lines whose meaning differs are reported and fail closed', () => {
  it('skips %c/%u/%d in `topic` lines (literal in Mosquitto, substituted by us)', () => {
    const { policy, unmapped } = convert('user a\ntopic read x/%c\ntopic read x/%u/y\ntopic read x/%d\n')
    expect(policy.rules).toEqual([])
    expect(unmapped.map((u) => [u.line, u.outcome])).toEqual([
      [2, 'skipped'],
      [3, 'skipped'],
      [4, 'skipped'],
    ])
    expect(unmapped[0]!.reason).toContain('Mosquitto does not substitute %c/%u in `topic` lines')
  })

  it('skips %d in patterns and %c/%u that do not fill a whole level', () => {
    const { policy, unmapped } = convert('pattern read d/%d\npattern read d/dev-%c\npattern read d/%c%u\n')
    expect(policy.rules).toEqual([])
    expect(unmapped).toEqual([
      { line: 1, outcome: 'skipped', reason: expect.stringContaining('Mosquitto has no %d substitution') },
      {
        line: 2,
        outcome: 'skipped',
        reason: expect.stringContaining('level "dev-%c" mixes %c/%u with other text'),
      },
      { line: 3, outcome: 'skipped', reason: expect.stringContaining('level "%c%u" mixes') },
    ])
  })

  it('drops write access to $SYS (Mosquitto refuses it before the ACL) and keeps read', () => {
    const { policy, unmapped } = convert(
      'user a\ntopic readwrite $SYS/#\ntopic write $SYS/x\ntopic read $SYS/y\n',
    )
    expect(policy.rules).toEqual([
      {
        name: 'mosquitto acl_file line 2',
        who: { username: 'a' },
        topic: '$SYS/#',
        action: 'subscribe',
        effect: 'allow',
      },
      {
        name: 'mosquitto acl_file line 4',
        who: { username: 'a' },
        topic: '$SYS/y',
        action: 'subscribe',
        effect: 'allow',
      },
    ])
    expect(unmapped.map((u) => [u.line, u.outcome])).toEqual([
      [2, 'narrowed'],
      [3, 'skipped'],
    ])
  })

  it('skips allow lines on $share and keeps deny lines on it (stricter)', () => {
    const { policy, unmapped } = convert('topic read $share/g/#\ntopic deny $share/g/x\n')
    expect(policy.rules).toEqual([
      {
        name: 'mosquitto acl_file line 2',
        who: 'anonymous',
        topic: '$share/g/x',
        action: 'both',
        effect: 'deny',
      },
    ])
    expect(unmapped.map((u) => [u.line, u.outcome])).toEqual([
      [1, 'skipped'],
      [2, 'kept'],
    ])
  })

  it('skips filters longer than our schema allows', () => {
    const long = `a/${'b'.repeat(1100)}`
    const { policy, unmapped } = convert(`topic read ${long}\n`)
    expect(policy.rules).toEqual([])
    expect(unmapped).toEqual([
      {
        line: 1,
        outcome: 'skipped',
        reason: 'the filter is longer than the 1024 characters our policy allows',
      },
    ])
  })

  it('reports a pattern deny that overlaps a user`s own allow (Mosquitto lets the allow win)', () => {
    const text =
      'user alice\ntopic readwrite devices/#\nuser bob\ntopic read other/#\npattern deny devices/%c/secret\n'
    const { policy, unmapped } = convert(text)
    expect(policy.rules).toHaveLength(3)
    expect(unmapped).toEqual([
      {
        line: 5,
        outcome: 'kept',
        reason:
          'Mosquitto consults a client\'s own `topic` lines before patterns, so for user "alice" (line 2) the ' +
          'overlapping allow wins over this pattern deny; in our policy the deny wins',
      },
    ])
    // Our engine: the deny wins (stricter than Mosquitto, which would allow alice here).
    const engine = engineFor(text)
    expect(allowed(engine, principal('cam', 'alice'), 'publish', 'devices/cam/secret')).toBe(false)
    expect(allowed(engine, principal('cam', 'alice'), 'publish', 'devices/cam/other')).toBe(true)
  })

  it('does not report a pattern deny that overlaps nothing a client owns', () => {
    expect(convert('user a\ntopic read x/#\npattern deny y/%c\n').unmapped).toEqual([])
  })
})
