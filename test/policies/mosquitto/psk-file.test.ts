import { describe, expect, it } from 'vitest'
import { parsePskFile } from '../../../policies/mosquitto/psk-file.js'
import { thrownBy } from '../../helpers/catch.js'

const KEY = '00112233445566778899aabbccddeeff'

describe('parsePskFile', () => {
  it('reads identity:hexkey lines, skipping comments and blank lines and trimming white space', () => {
    const text = `# devices\n\ncam-1:${KEY}\n  sensor 2 :\t${KEY.toUpperCase()}  \r\n`
    expect(parsePskFile(text)).toEqual({
      entries: [
        { line: 3, identity: 'cam-1', key: Buffer.from(KEY, 'hex') },
        { line: 4, identity: 'sensor 2', key: Buffer.from(KEY, 'hex') },
      ],
      problems: [],
    })
  })

  it('keeps leading zero bytes of a key', () => {
    expect(parsePskFile('a:0000ff\n').entries[0]!.key).toEqual(Buffer.from([0, 0, 0xff]))
  })

  const cases: Array<[string, string]> = [
    ['no colon', 'has no `:`; expected identity:hexkey (Mosquitto skips such lines silently)'],
    [`:${KEY}`, 'has an empty identity'],
    ['dev:', 'has an empty key for identity "dev"'],
    ['dev:   ', 'has an empty key for identity "dev"'],
    ['dev:00zz', 'has a key for identity "dev" with characters other than 0-9, a-f, A-F'],
    ['dev:0x00ff', 'has a key for identity "dev" with characters other than 0-9, a-f, A-F'],
    ['dev:abc', 'has a key for identity "dev" with an odd number (3) of hex digits'],
    [`dev:${KEY}:x`, 'has a second `:`; expected identity:hexkey (Mosquitto would ignore what follows it)'],
    [`dev:${'ab'.repeat(257)}`, 'has a 257-byte key for identity "dev"; expected at most 256'],
  ]
  for (const [line, message] of cases) {
    it(`reports ${JSON.stringify(line.length > 40 ? `${line.slice(0, 40)}…` : line)} with its line number`, () => {
      const result = parsePskFile(`ok:${KEY}\n${line}\nok2:${KEY}\n`)
      expect(result.entries.map((e) => e.line)).toEqual([1, 3])
      expect(result.problems).toHaveLength(1)
      expect(result.problems[0]).toMatchObject({ line: 2, message })
      expect(result.problems[0]!.text).toMatch(/<redacted>$/)
      expect(result.problems[0]!.text).not.toContain(KEY)
    })
  }

  it('keeps the first of duplicate identities (Mosquitto finds the first too)', () => {
    const result = parsePskFile(`dev:${KEY}\ndev:ffff\n`)
    expect(result.entries).toEqual([{ line: 1, identity: 'dev', key: Buffer.from(KEY, 'hex') }])
    expect(result.problems).toEqual([
      {
        line: 2,
        text: 'dev:<redacted>',
        message: 'repeats identity "dev" from line 1; the first entry is kept',
      },
    ])
  })

  it('honours maxKeyBytes and refuses a bad one', () => {
    expect(parsePskFile('dev:aabbcc\n', { maxKeyBytes: 2 }).problems[0]!.message).toBe(
      'has a 3-byte key for identity "dev"; expected at most 2',
    )
    expect(thrownBy(() => parsePskFile('', { maxKeyBytes: 1.5 }))).toMatchObject({
      code: 'MOSQ_ERR_BAD_OPTION',
      message: 'Expected `maxKeyBytes` to be a positive integer, got `1.5` (number)',
    })
  })

  it('throws MOSQ_ERR_INPUT_TOO_LARGE over the byte limit', () => {
    expect(thrownBy(() => parsePskFile(Buffer.alloc(100, 0x61), { maxBytes: 99 }))).toMatchObject({
      code: 'MOSQ_ERR_INPUT_TOO_LARGE',
      message: 'Expected a psk_file of at most 99 bytes, got 100 bytes',
    })
  })
})
