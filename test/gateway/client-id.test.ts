import { describe, expect, it } from 'vitest'
import { compileClientIdPatterns, isAcceptableClientId } from '../../gateway/client-id.js'

describe('isAcceptableClientId', () => {
  it('accepts ordinary ids up to 128 characters', () => {
    for (const id of [
      'a',
      'sensor-01',
      'dev_a.b-c',
      'DEVICE:42',
      'device with spaces',
      'é-capteur',
      'x'.repeat(128),
    ]) {
      expect(isAcceptableClientId(id), id).toBe(true)
    }
  })

  it('refuses the empty id and ids longer than 128 characters', () => {
    expect(isAcceptableClientId('')).toBe(false)
    expect(isAcceptableClientId('x'.repeat(129))).toBe(false)
    expect(isAcceptableClientId('x'.repeat(10_000))).toBe(false)
  })

  it('refuses MQTT wildcards and the topic separator anywhere in the id', () => {
    for (const id of ['+', '#', '/', 'a+b', 'dev#', 'devices/a', '/lead', 'trail/']) {
      expect(isAcceptableClientId(id), id).toBe(false)
    }
  })

  it('refuses every C0 control character and DEL', () => {
    for (let code = 0; code <= 0x1f; code++) {
      const id = `dev${String.fromCharCode(code)}x`
      expect(isAcceptableClientId(id), `U+${code.toString(16).padStart(4, '0')}`).toBe(false)
    }
    expect(isAcceptableClientId('dev\u007f')).toBe(false)
    expect(isAcceptableClientId('\u0000')).toBe(false)
    expect(isAcceptableClientId('dev\n')).toBe(false)
  })

  it('accepts the printable neighbours of the refused characters', () => {
    for (const id of [' ', '!', '*', ',', '.', '0', '~', '\u0080x', '\u00a0']) {
      expect(isAcceptableClientId(id), JSON.stringify(id)).toBe(true)
    }
  })
})

describe('compileClientIdPatterns', () => {
  it('matches exact patterns exactly', () => {
    const allowed = compileClientIdPatterns(['dev-a', 'dev-b'])
    expect(allowed('dev-a')).toBe(true)
    expect(allowed('dev-b')).toBe(true)
    expect(allowed('dev-c')).toBe(false)
    expect(allowed('dev-a ')).toBe(false)
    expect(allowed('DEV-A')).toBe(false)
    expect(allowed('dev-ab')).toBe(false)
    expect(allowed('xdev-a')).toBe(false)
    expect(allowed('')).toBe(false)
  })

  it('allows nothing when given no patterns', () => {
    const allowed = compileClientIdPatterns([])
    expect(allowed('')).toBe(false)
    expect(allowed('anything')).toBe(false)
  })

  it("matches '*' against any run of characters, including none, anchored at both ends", () => {
    const allowed = compileClientIdPatterns(['sensor-*'])
    expect(allowed('sensor-')).toBe(true)
    expect(allowed('sensor-1')).toBe(true)
    expect(allowed('sensor-abc-def')).toBe(true)
    expect(allowed('sensor-line1\nline2')).toBe(true)
    expect(allowed('sensor')).toBe(false)
    expect(allowed('my-sensor-1')).toBe(false)
    expect(allowed('Sensor-1')).toBe(false)
  })

  it("handles '*' at the start, in the middle and more than once", () => {
    const suffix = compileClientIdPatterns(['*-gw'])
    expect(suffix('a-gw')).toBe(true)
    expect(suffix('-gw')).toBe(true)
    expect(suffix('a-gw-b')).toBe(false)

    const middle = compileClientIdPatterns(['a*z'])
    expect(middle('az')).toBe(true)
    expect(middle('abcz')).toBe(true)
    expect(middle('abc')).toBe(false)
    expect(middle('zaz!')).toBe(false)

    const twice = compileClientIdPatterns(['x*-*y'])
    expect(twice('x-y')).toBe(true)
    expect(twice('x1-2y')).toBe(true)
    expect(twice('x12y')).toBe(false)

    const any = compileClientIdPatterns(['*'])
    expect(any('')).toBe(true)
    expect(any('whatever')).toBe(true)
  })

  it('treats regular expression metacharacters in patterns as literal characters', () => {
    const dotted = compileClientIdPatterns(['a.b*'])
    expect(dotted('a.b1')).toBe(true)
    expect(dotted('a.b')).toBe(true)
    expect(dotted('axb1')).toBe(false)
    expect(dotted('ab1')).toBe(false)

    const meta = compileClientIdPatterns(['(dev)?[0-9]{2}|x$^\\*'])
    expect(meta('(dev)?[0-9]{2}|x$^\\')).toBe(true)
    expect(meta('(dev)?[0-9]{2}|x$^\\tail')).toBe(true)
    expect(meta('dev12')).toBe(false)
    expect(meta('12')).toBe(false)
    expect(meta('x')).toBe(false)

    // An exact pattern with metacharacters is compared as a string.
    const exact = compileClientIdPatterns(['dev.1'])
    expect(exact('dev.1')).toBe(true)
    expect(exact('devx1')).toBe(false)
  })

  it('allows an id when any pattern, exact or glob, matches it', () => {
    const allowed = compileClientIdPatterns(['gw-main', 'dev-*', '*-backup'])
    expect(allowed('gw-main')).toBe(true)
    expect(allowed('dev-7')).toBe(true)
    expect(allowed('db-backup')).toBe(true)
    expect(allowed('gw-main2')).toBe(false)
    expect(allowed('other')).toBe(false)
  })
})
