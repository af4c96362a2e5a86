import { describe, expect, it } from 'vitest'
import { parseAclFile } from '../../../policies/mosquitto/acl-file.js'
import { MosquittoImportError } from '../../../policies/mosquitto/errors.js'
import { thrownBy } from '../../helpers/catch.js'

describe('parseAclFile: grammar', () => {
  it('reads every access word, bare filters, users and patterns with their line numbers', () => {
    const text = [
      '# anonymous clients',
      'topic read public/#',
      '',
      'user alice',
      'topic write alice/out',
      'topic readwrite alice/both',
      'topic deny alice/secret',
      'topic alice/bare',
      'pattern read devices/%c/in',
      'pattern write devices/%u/out',
    ].join('\n')
    expect(parseAclFile(text)).toEqual({
      entries: [
        { kind: 'topic', line: 2, user: null, access: 'read', filter: 'public/#' },
        { kind: 'topic', line: 5, user: 'alice', access: 'write', filter: 'alice/out' },
        { kind: 'topic', line: 6, user: 'alice', access: 'readwrite', filter: 'alice/both' },
        { kind: 'topic', line: 7, user: 'alice', access: 'deny', filter: 'alice/secret' },
        { kind: 'topic', line: 8, user: 'alice', access: 'readwrite', filter: 'alice/bare' },
        { kind: 'pattern', line: 9, access: 'read', filter: 'devices/%c/in' },
        { kind: 'pattern', line: 10, access: 'write', filter: 'devices/%u/out' },
      ],
      problems: [],
      warnings: [],
    })
  })

  it('takes the rest of the line, trimmed, as the user name and the filter (spaces included)', () => {
    const text = 'user   John Smith  \ntopic read   rooms/living room/temp \t\n'
    expect(parseAclFile(text).entries).toEqual([
      { kind: 'topic', line: 2, user: 'John Smith', access: 'read', filter: 'rooms/living room/temp' },
    ])
  })

  it('accepts CRLF line ends, leading spaces before a keyword, and several user sections', () => {
    const text = 'user a\r\n  topic read x\r\nuser b\r\ntopic write y\r\nuser a\r\ntopic deny z\r\n'
    expect(parseAclFile(text).entries).toEqual([
      { kind: 'topic', line: 2, user: 'a', access: 'read', filter: 'x' },
      { kind: 'topic', line: 4, user: 'b', access: 'write', filter: 'y' },
      { kind: 'topic', line: 6, user: 'a', access: 'deny', filter: 'z' },
    ])
  })

  it('keeps `pattern` lines global wherever they appear and keeps %c/%u as written', () => {
    const result = parseAclFile('user bob\npattern readwrite home/%u/%c/#\n')
    expect(result.entries).toEqual([
      { kind: 'pattern', line: 2, access: 'readwrite', filter: 'home/%u/%c/#' },
    ])
  })

  it('reads `topic read` as readwrite access to the topic "read", as Mosquitto does, with a warning', () => {
    const result = parseAclFile('topic read\n')
    expect(result.entries).toEqual([
      { kind: 'topic', line: 1, user: null, access: 'readwrite', filter: 'read' },
    ])
    expect(result.problems).toEqual([])
    expect(result.warnings).toEqual([
      {
        line: 1,
        text: 'topic read',
        message: 'has no filter after `read`, so Mosquitto reads "read" as the filter with readwrite access',
      },
    ])
  })

  it('warns about a pattern without %c or %u (it applies to everyone) but keeps it', () => {
    const result = parseAclFile('pattern read a/b\n')
    expect(result.entries).toEqual([{ kind: 'pattern', line: 1, access: 'read', filter: 'a/b' }])
    expect(result.warnings).toEqual([
      {
        line: 1,
        text: 'pattern read a/b',
        message: 'is a pattern without %c or %u: it applies to every client (Mosquitto warns about this too)',
      },
    ])
  })

  it('accepts $SYS and other $ filters, and the wildcards in valid places', () => {
    const result = parseAclFile(
      'topic read $SYS/#\ntopic read +/+/x\ntopic readwrite #\ntopic read $app/+/y\n',
    )
    expect(result.problems).toEqual([])
    expect(result.entries.map((e) => e.filter)).toEqual(['$SYS/#', '+/+/x', '#', '$app/+/y'])
  })

  it('reads bytes as UTF-8', () => {
    const result = parseAclFile(Buffer.from('user jürgen\ntopic read häuser/küche\n', 'utf8'))
    expect(result.entries).toEqual([
      { kind: 'topic', line: 2, user: 'jürgen', access: 'read', filter: 'häuser/küche' },
    ])
  })
})

describe('parseAclFile: broken lines are reported with their line number and skipped', () => {
  const cases: Array<[string, string]> = [
    ['bogus line', 'starts with "bogus"; expected `user`, `topic`, `pattern` or a # comment'],
    ['  # indented comment', 'starts with "#"; expected `user`, `topic`, `pattern` or a # comment'],
    [
      'topic\tread x',
      'starts with "topic\\tread"; expected `user`, `topic`, `pattern` or a # comment (words must be separated by spaces, not tabs)',
    ],
    ['topic', 'has `topic` without a topic filter'],
    ['pattern   ', 'has `pattern` without a topic filter'],
    ['user', 'has `user` without a name'],
    ['user    ', 'has `user` without a name'],
    ['topic rw a/b', 'has access "rw"; expected read, write, readwrite or deny'],
    ['topic READ a/b', 'has access "READ"; expected read, write, readwrite or deny'],
    [
      'topic read a/#/b',
      'has topic filter "a/#/b", which Mosquitto refuses: \'#\' must be the whole last level (at character 3)',
    ],
    [
      'topic read a/b#',
      'has topic filter "a/b#", which Mosquitto refuses: \'#\' must be the whole last level (at character 4)',
    ],
    [
      'pattern read a/+x/%c',
      'has topic filter "a/+x/%c", which Mosquitto refuses: \'+\' must fill a whole level (at character 3)',
    ],
  ]
  for (const [line, message] of cases) {
    it(`${JSON.stringify(line)}`, () => {
      const result = parseAclFile(`topic read ok/1\n${line}\ntopic read ok/3\n`)
      expect(result.problems).toEqual([{ line: 2, text: line.trimEnd(), message }])
      expect(result.entries.map((e) => e.line)).toEqual([1, 3])
    })
  }

  it('reports a filter with more than 200 separators (the broker`s hierarchy limit) but not one with 200', () => {
    const ok = Array.from({ length: 201 }, () => 'a').join('/')
    const tooDeep = `${ok}/a`
    const result = parseAclFile(`topic read ${ok}\ntopic read ${tooDeep}\n`)
    expect(result.entries).toHaveLength(1)
    expect(result.problems).toHaveLength(1)
    expect(result.problems[0]).toMatchObject({
      line: 2,
      message: expect.stringContaining('has 202 levels; Mosquitto allows 201'),
    })
  })

  it('reports NUL characters, invalid UTF-8, a byte order mark and overlong lines, and goes on', () => {
    const bytes = Buffer.concat([
      Buffer.from('\uFEFFuser a\n', 'utf8'),
      Buffer.from('topic read a\u0000b\n', 'utf8'),
      Buffer.from([0x74, 0x6f, 0x70, 0x69, 0x63, 0x20, 0xff, 0x0a]),
      Buffer.from(`topic read ${'x'.repeat(100)}\n`, 'utf8'),
      Buffer.from('topic read fine\n', 'utf8'),
    ])
    const result = parseAclFile(bytes, { maxLineLength: 50 })
    expect(result.problems.map((p) => [p.line, p.message])).toEqual([
      [
        1,
        'starts with a byte order mark (U+FEFF), which Mosquitto reads as part of the line; save the file without it',
      ],
      [2, 'contains a NUL character (Mosquitto would silently cut the line there)'],
      [3, 'is not valid UTF-8'],
      [4, 'is 111 characters long; expected at most 50'],
    ])
    expect(result.entries).toEqual([{ kind: 'topic', line: 5, user: null, access: 'read', filter: 'fine' }])
  })

  it('shortens long lines in problem reports', () => {
    const result = parseAclFile(`topic bad ${'y'.repeat(300)}`)
    expect(result.problems[0]!.text).toBe(`topic bad ${'y'.repeat(110)}…`)
  })

  it('throws MOSQ_ERR_INPUT_TOO_LARGE for input over the byte limit, for strings and bytes', () => {
    for (const input of ['topic read ü/12345', Buffer.from('topic read ü/12345')]) {
      const err = thrownBy(() => parseAclFile(input, { maxBytes: 16 }))
      expect(err).toBeInstanceOf(MosquittoImportError)
      expect(err).toMatchObject({
        name: 'MosquittoImportError',
        code: 'MOSQ_ERR_INPUT_TOO_LARGE',
        message: 'Expected an acl_file of at most 16 bytes, got 19 bytes',
      })
    }
  })

  it('throws MOSQ_ERR_BAD_OPTION for a limit that is not a positive integer', () => {
    expect(thrownBy(() => parseAclFile('', { maxLineLength: 0 }))).toMatchObject({
      code: 'MOSQ_ERR_BAD_OPTION',
      message: 'Expected `maxLineLength` to be a positive integer, got `0` (number)',
    })
  })

  it('accepts 16 MiB by default and refuses one byte more', () => {
    const line = `#${'c'.repeat(1022)}\n`
    const text = line.repeat((16 * 1024 * 1024) / line.length)
    expect(parseAclFile(text)).toEqual({ entries: [], problems: [], warnings: [] })
    expect(thrownBy(() => parseAclFile(`${text}\n`))).toMatchObject({ code: 'MOSQ_ERR_INPUT_TOO_LARGE' })
  })
})
