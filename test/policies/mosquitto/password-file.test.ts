import { createHash, pbkdf2Sync } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MosquittoPasswordVerifier, parsePasswordFile } from '../../../policies/mosquitto/password-file.js'
import {
  type MosquittoPasswordHash,
  parseMosquittoHash,
  verifyMosquittoPassword,
} from '../../../policies/mosquitto/password-hash.js'
import { thrownBy } from '../../helpers/catch.js'
import { mosquittoPasswd } from '../../helpers/mosquitto-passwd.js'
import { makeTempDir, removeDir } from '../../helpers/tmp.js'

const USERS = [
  { username: 'alice', password: 'correct horse battery staple' },
  { username: 'carol smith', password: 'pass:with:colons and spaces' },
  { username: 'dave', password: '' },
  { username: 'émile', password: 'mot de passe ünïcode ✓' },
]

let dir: string
/** password_file text written by the real mosquitto_passwd: alice..émile as $7$, bob as $6$. */
let fileText: string

beforeAll(async () => {
  dir = await makeTempDir('mosq-passwd')
  const file = join(dir, 'passwords')
  const [first, ...rest] = USERS
  await mosquittoPasswd(['-c', '-b', file, first!.username, first!.password])
  for (const user of rest) await mosquittoPasswd(['-b', file, user.username, user.password])
  await mosquittoPasswd(['-H', 'sha512', '-b', file, 'bob', 'hunter2'])
  fileText = await readFile(file, 'utf8')
})

afterAll(async () => {
  await removeDir(dir)
})

function entry(username: string): MosquittoPasswordHash {
  const found = parsePasswordFile(fileText).entries.find((e) => e.username === username)
  if (!found) throw new Error(`Expected ${username} in the password file:\n${fileText}`)
  return found.hash
}

describe('password_file written by the real mosquitto_passwd', () => {
  it('parses every line, $7$ (PBKDF2, 101 iterations, 12-byte salt) by default and $6$ with -H sha512', () => {
    const result = parsePasswordFile(fileText)
    expect(result.problems).toEqual([])
    expect(result.entries.map((e) => [e.line, e.username, e.hash.type])).toEqual([
      [1, 'alice', 'sha512-pbkdf2'],
      [2, 'carol smith', 'sha512-pbkdf2'],
      [3, 'dave', 'sha512-pbkdf2'],
      [4, 'émile', 'sha512-pbkdf2'],
      [5, 'bob', 'sha512'],
    ])
    const alice = entry('alice')
    expect(alice).toMatchObject({ type: 'sha512-pbkdf2', iterations: 101 })
    expect(alice.salt).toHaveLength(12)
    expect(alice.hash).toHaveLength(64)
    expect(entry('bob').salt).toHaveLength(12)
  })

  it('accepts the right password and refuses a wrong one, for $7$ and $6$', async () => {
    for (const { username, password } of USERS) {
      expect(await verifyMosquittoPassword(entry(username), password), username).toBe(true)
      expect(await verifyMosquittoPassword(entry(username), `${password}x`), username).toBe(false)
    }
    expect(await verifyMosquittoPassword(entry('bob'), 'hunter2')).toBe(true)
    expect(await verifyMosquittoPassword(entry('bob'), 'hunter3')).toBe(false)
    expect(await verifyMosquittoPassword(entry('bob'), 'Hunter2')).toBe(false)
  })

  it('takes the password as bytes too', async () => {
    expect(await verifyMosquittoPassword(entry('émile'), Buffer.from(USERS[3]!.password, 'utf8'))).toBe(true)
    expect(await verifyMosquittoPassword(entry('émile'), Buffer.from(USERS[3]!.password, 'latin1'))).toBe(
      false,
    )
  })

  it('refuses every password once the hash, the salt or the iteration count is tampered with', async () => {
    for (const username of ['alice', 'bob']) {
      const original = entry(username)
      const password = username === 'bob' ? 'hunter2' : USERS[0]!.password
      const flippedHash = Buffer.from(original.hash)
      flippedHash[63] = flippedHash[63]! ^ 0x01
      const flippedSalt = Buffer.from(original.salt)
      flippedSalt[0] = flippedSalt[0]! ^ 0x80
      expect(await verifyMosquittoPassword({ ...original, hash: flippedHash }, password)).toBe(false)
      expect(await verifyMosquittoPassword({ ...original, salt: flippedSalt }, password)).toBe(false)
      if (original.type === 'sha512-pbkdf2') {
        expect(await verifyMosquittoPassword({ ...original, iterations: 100 }, password)).toBe(false)
      }
    }
  })

  it('refuses a tampered line of the file (one base64 character in the middle of the hash changed)', async () => {
    const line = fileText.split('\n').find((l) => l.startsWith('alice:'))!
    // 40 characters from the end: a full 6 bits of hash (the last ones before `==` are partly padding).
    const at = line.length - 40
    const tampered = `${line.slice(0, at)}${line[at] === 'A' ? 'B' : 'A'}${line.slice(at + 1)}`
    const parsed = parsePasswordFile(tampered)
    expect(parsed.problems).toEqual([])
    expect(parsed.entries[0]!.hash.hash).not.toEqual(entry('alice').hash)
    expect(await verifyMosquittoPassword(parsed.entries[0]!.hash, USERS[0]!.password)).toBe(false)
  })

  it('verifies through MosquittoPasswordVerifier, refusing unknown users', async () => {
    const verifier = new MosquittoPasswordVerifier(parsePasswordFile(fileText).entries)
    expect(verifier.has('alice')).toBe(true)
    expect(await verifier.verify('alice', USERS[0]!.password)).toBe(true)
    expect(await verifier.verify('bob', 'hunter2')).toBe(true)
    expect(await verifier.verify('alice', 'hunter2')).toBe(false)
    expect(await verifier.verify('mallory', 'hunter2')).toBe(false)
    expect(await verifier.verify('mallory', '')).toBe(false)
  })
})

describe('the hash constructions, following the source', () => {
  const salt12 = Buffer.from('0123456789ab')
  const salt64 = Buffer.alloc(64, 7)

  it('$6$ is SHA-512 over the password followed by the salt, single round', async () => {
    const hash = createHash('sha512').update('pw').update(salt12).digest()
    const text = `$6$${salt12.toString('base64')}$${hash.toString('base64')}`
    const parsed = parseMosquittoHash(text)
    expect(parsed).toEqual({ type: 'sha512', salt: salt12, hash })
    expect(await verifyMosquittoPassword(parsed as MosquittoPasswordHash, 'pw')).toBe(true)
    // The other order (salt first) is not what Mosquitto does.
    const reversed = createHash('sha512').update(salt12).update('pw').digest()
    expect(await verifyMosquittoPassword({ type: 'sha512', salt: salt12, hash: reversed }, 'pw')).toBe(false)
  })

  it('$7$ is PBKDF2-HMAC-SHA512 with 64 bytes of output; a 64-byte salt (Mosquitto 2.1) is accepted', async () => {
    const hash = pbkdf2Sync('pw', salt64, 3, 64, 'sha512')
    const parsed = parseMosquittoHash(`$7$3$${salt64.toString('base64')}$${hash.toString('base64')}`)
    expect(parsed).toEqual({ type: 'sha512-pbkdf2', iterations: 3, salt: salt64, hash })
    expect(await verifyMosquittoPassword(parsed as MosquittoPasswordHash, 'pw')).toBe(true)
    expect(await verifyMosquittoPassword(parsed as MosquittoPasswordHash, 'pw ')).toBe(false)
  })

  it('refuses a password with a NUL byte (Mosquitto would hash only up to it) or over 65,535 bytes', async () => {
    const hash = createHash('sha512').update('pw').update(salt12).digest()
    const stored: MosquittoPasswordHash = { type: 'sha512', salt: salt12, hash }
    expect(await verifyMosquittoPassword(stored, 'pw\u0000anything')).toBe(false)
    const long = 'x'.repeat(65_536)
    const longHash = createHash('sha512').update(long).update(salt12).digest()
    expect(await verifyMosquittoPassword({ type: 'sha512', salt: salt12, hash: longHash }, long)).toBe(false)
  })

  it('runs PBKDF2 off the event loop', async () => {
    const stored = {
      type: 'sha512-pbkdf2',
      iterations: 200_000,
      salt: salt12,
      hash: Buffer.alloc(64),
    } as const
    let ticks = 0
    const timer = setInterval(() => ticks++, 1)
    await verifyMosquittoPassword(stored, 'pw')
    clearInterval(timer)
    expect(ticks).toBeGreaterThan(0)
  })

  it('refuses a stored iteration count over the cap without computing it', async () => {
    const stored = { type: 'sha512-pbkdf2', iterations: 50, salt: salt12, hash: Buffer.alloc(64) } as const
    expect(await verifyMosquittoPassword(stored, 'pw', { maxIterations: 10 })).toBe(false)
    expect(thrownBy(() => parseMosquittoHash('$6$', { maxIterations: -1 }))).toMatchObject({
      code: 'MOSQ_ERR_BAD_OPTION',
    })
  })
})

describe('parsePasswordFile: broken lines', () => {
  const salt = Buffer.alloc(12, 1).toString('base64')
  const hash = Buffer.alloc(64, 2).toString('base64')
  const good6 = `$6$${salt}$${hash}`

  const cases: Array<[string, string]> = [
    ['no colon here', 'has no `:`; expected username:hash (Mosquitto skips such lines silently)'],
    [`:${good6}`, 'has an empty username'],
    ['user:', 'has no password hash after the `:`'],
    [
      `user:${good6}:extra`,
      'has a second `:`; expected username:hash (Mosquitto would ignore what follows it)',
    ],
    [
      'user:plaintext',
      'for user "user" is not a Mosquitto password hash; expected $6$<salt>$<hash> or $7$<iterations>$<salt>$<hash> (plain-text passwords are not accepted: hash them with mosquitto_passwd -U)',
    ],
    [
      `user:$5$${salt}$${hash}`,
      'for user "user" is not a Mosquitto password hash; expected $6$<salt>$<hash> or $7$<iterations>$<salt>$<hash> (plain-text passwords are not accepted: hash them with mosquitto_passwd -U)',
    ],
    [`user:$6$${salt}`, 'for user "user" has 2 `$`-separated fields; expected $6$<salt>$<hash>'],
    [
      `user:$7$${salt}$${hash}`,
      'for user "user" has 3 `$`-separated fields; expected $7$<iterations>$<salt>$<hash>',
    ],
    [`user:$7$0$${salt}$${hash}`, 'for user "user" has 0 iterations; expected 1 to 10000000'],
    [`user:$7$10000001$${salt}$${hash}`, 'for user "user" has 10000001 iterations; expected 1 to 10000000'],
    [`user:$7$-5$${salt}$${hash}`, 'for user "user" has iteration count "-5"; expected a positive integer'],
    [`user:$7$1e3$${salt}$${hash}`, 'for user "user" has iteration count "1e3"; expected a positive integer'],
    [
      `user:$6$${Buffer.alloc(16).toString('base64')}$${hash}`,
      'for user "user" has a salt that is not 12 or 64 bytes of base64 (got 16 bytes)',
    ],
    [`user:$6$not*base64$${hash}`, 'for user "user" has a salt that is not 12 or 64 bytes of base64'],
    [
      `user:$6$${salt}$${Buffer.alloc(32).toString('base64')}`,
      'for user "user" has a hash that is not 64 bytes of base64 (got 32 bytes)',
    ],
    [`user:$6$${salt}$${hash.slice(0, -2)}`, 'for user "user" has a hash that is not 64 bytes of base64'],
  ]
  for (const [line, message] of cases) {
    it(JSON.stringify(line.length > 60 ? `${line.slice(0, 60)}…` : line), () => {
      const result = parsePasswordFile(`ok:${good6}\n${line}\n`)
      expect(result.entries.map((e) => e.username)).toEqual(['ok'])
      expect(result.problems).toHaveLength(1)
      expect(result.problems[0]).toMatchObject({ line: 2, message })
      // The hash is never quoted back.
      expect(result.problems[0]!.text).not.toContain(salt)
      expect(result.problems[0]!.text).toMatch(/<redacted>$/)
    })
  }

  it('skips comments and blank lines, trims white space around fields, and keeps the first of duplicate users', () => {
    const text = `# comment\n\n  alice  :  ${good6}  \r\nalice:${good6}\n   \n`
    const result = parsePasswordFile(text)
    expect(result.entries).toEqual([{ line: 3, username: 'alice', hash: parseMosquittoHash(good6) }])
    expect(result.problems).toEqual([
      {
        line: 4,
        text: 'alice:<redacted>',
        message: 'repeats user "alice" from line 3; the first entry is kept',
      },
    ])
  })

  it('throws MOSQ_ERR_INPUT_TOO_LARGE over the byte limit', () => {
    expect(thrownBy(() => parsePasswordFile(`ok:${good6}\n`, { maxBytes: 10 }))).toMatchObject({
      name: 'MosquittoImportError',
      code: 'MOSQ_ERR_INPUT_TOO_LARGE',
      message: 'Expected a password_file of at most 10 bytes, got 112 bytes',
    })
  })
})
