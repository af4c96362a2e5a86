import { describe, expect, it } from 'vitest'
import { compilePolicy, PolicyEngine } from '../../policies/engine.js'
import { PolicyError } from '../../policies/errors.js'
import { policySchema } from '../../policies/schema.js'
import { policy } from './fixtures.js'

function errorOf(input: unknown): PolicyError {
  try {
    compilePolicy(input)
  } catch (err) {
    if (err instanceof PolicyError) return err
    throw err
  }
  throw new Error('expected a PolicyError')
}

const ok = { who: 'everyone', topic: 'ok/#', action: 'both' } as const

describe('compilePolicy errors', () => {
  it('a filter with # before the last level names the rule and quotes the filter', () => {
    const err = errorOf(policy(ok, { name: 'cams', who: 'everyone', topic: 'a/#/b', action: 'publish' }))
    expect(err.code).toBe('POLICY_ERR_BAD_FILTER')
    expect(err.name).toBe('PolicyError')
    expect(err.message).toBe(
      `rules[1] ("cams").topic: "a/#/b" is not a valid topic filter: '#' must be the last level, got it at level 2 of 3`,
    )
  })

  it('a + inside a level names the rule by index when it has no name', () => {
    const err = errorOf(policy(ok, ok, { who: 'everyone', topic: 'a+', action: 'subscribe' }))
    expect(err.code).toBe('POLICY_ERR_BAD_FILTER')
    expect(err.message).toBe(
      `rules[2].topic: "a+" is not a valid topic filter: '+' must fill a whole level, got level "a+"`,
    )
  })

  it('a substitution inside a level is refused', () => {
    expect(errorOf(policy({ who: 'everyone', topic: 'dev-%d', action: 'publish' })).message).toBe(
      'rules[0].topic: "dev-%d" is not a valid topic filter: ' +
        'a substitution (%c, %u, %d) must fill a whole level, got level "dev-%d"',
    )
  })

  it('an unknown key names its path', () => {
    const err = errorOf(policy(ok, ok, ok, { ...ok, name: 'x', maxQoS: 1 } as never))
    expect(err.code).toBe('POLICY_ERR_SCHEMA')
    expect(err.message).toBe('rules[3].maxQoS: unknown key "maxQoS" (rule "x")')
  })

  it('a wrong type names the path and quotes the value', () => {
    const err = errorOf(policy(ok, { ...ok, maxPayloadBytes: '10' } as never))
    expect(err.code).toBe('POLICY_ERR_SCHEMA')
    expect(err.message).toBe('rules[1].maxPayloadBytes: expected number, got "10" (string)')
  })

  it('a value out of range names the path and the allowed values', () => {
    const err = errorOf(policy(ok, ok, ok, { ...ok, maxQos: 3 } as never))
    expect(err.message).toBe('rules[3].maxQos: expected one of 0, 1, 2, got 3 (number)')
  })

  it('a bad who says what is expected, or which field inside is wrong', () => {
    expect(errorOf(policy({ ...ok, who: 'everybody' } as never)).message).toBe(
      'rules[0].who: expected "everyone", "anonymous" or a mapping with one key: ' +
        'device, username, clientId or group, got "everybody" (string)',
    )
    expect(errorOf(policy({ ...ok, who: { device: 7 } } as never)).message).toBe(
      'rules[0].who.device: expected string, got 7 (number)',
    )
    expect(errorOf(policy({ ...ok, who: { device: 'a', group: 'b' } } as never)).message).toBe(
      'rules[0].who: expected "everyone", "anonymous" or a mapping with one key: ' +
        'device, username, clientId or group, got a mapping',
    )
  })

  it('several problems are one line', () => {
    const err = errorOf({
      rules: [
        { ...ok, action: 'read' },
        { ...ok, retain: 'no' },
      ],
    })
    expect(err.message).not.toContain('\n')
    expect(err.message).toContain(
      'rules[0].action: Invalid option: expected one of "publish"|"subscribe"|"both", got "read" (string)',
    )
    expect(err.message).toContain('; rules[1].retain: expected boolean, got "no" (string)')
  })

  it('refuses a missing rules list and a top level that is not a mapping', () => {
    expect(errorOf({}).message).toBe('rules: missing, expected array')
    expect(errorOf(null).message).toBe('(top level): expected object, got null')
  })

  it('PolicyEngine.compile checks filters of an already parsed policy', () => {
    const parsed = policySchema.parse(policy({ who: 'everyone', topic: '#/a', action: 'publish' }))
    expect(() => PolicyEngine.compile(parsed)).toThrow(PolicyError)
  })

  it('accepts an empty rule list (everything is denied)', () => {
    expect(compilePolicy({ rules: [] }).rules).toEqual([])
  })
})
