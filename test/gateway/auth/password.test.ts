import { describe, expect, it } from 'vitest'
import {
  DEFAULT_SCRYPT,
  defaultScryptConcurrency,
  hashPassword,
  PasswordCheckAbandoned,
  PEPPERED_SCRYPT,
  parsePasswordHash,
  type ScryptParams,
  verifyAgainstDummy,
  verifyPassword,
} from '../../../gateway/auth/password.js'
import { pepperFrom } from '../../../gateway/auth/pepper.js'
import { GatewayError } from '../../../gateway/errors.js'
import { rejectionOf, thrownBy } from '../../helpers/catch.js'

/** The cheapest parameters the parser accepts, so the suite stays fast. */
const FAST: ScryptParams = { ln: 10, r: 8, p: 1 }
const PASSWORD = 'correct horse battery staple'
/** 16 bytes of salt and 32 bytes of hash, in unpadded base64url. */
const SALT = Buffer.alloc(16, 1).toString('base64url')
const HASH = Buffer.alloc(32, 2).toString('base64url')

function encode(params: string, salt = SALT, hash = HASH): string {
  return `$scrypt$${params}$${salt}$${hash}`
}

/** Asserts the error parsePasswordHash throws for `encoded` and returns its message. */
function formatError(encoded: string): string {
  const err = thrownBy(() => parsePasswordHash(encoded))
  expect(err).toBeInstanceOf(GatewayError)
  expect(err).toMatchObject({ name: 'GatewayError', code: 'GW_ERR_BAD_PASSWORD_HASH' })
  const message = (err as GatewayError).message
  expect(message).toContain('expected $scrypt$ln=N,r=N,p=N$<salt>$<hash>')
  return message
}

describe('hashPassword', () => {
  it('writes $scrypt$ln,r,p$salt$hash with a 16-byte salt and a 32-byte hash', async () => {
    const encoded = await hashPassword(PASSWORD, FAST)
    expect(encoded).toMatch(/^\$scrypt\$ln=10,r=8,p=1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/)
    const parsed = parsePasswordHash(encoded)
    expect(parsed.params).toEqual(FAST)
    expect(parsed.salt).toHaveLength(16)
    expect(parsed.hash).toHaveLength(32)
  })

  it('salts every hash afresh', async () => {
    const [a, b] = await Promise.all([hashPassword(PASSWORD, FAST), hashPassword(PASSWORD, FAST)])
    expect(a).not.toBe(b)
    expect(await verifyPassword(Buffer.from(PASSWORD), parsePasswordHash(a))).toBe(true)
    expect(await verifyPassword(Buffer.from(PASSWORD), parsePasswordHash(b))).toBe(true)
  })

  it('never writes the password into the hash', async () => {
    const encoded = await hashPassword(PASSWORD, FAST)
    expect(encoded).not.toContain(PASSWORD)
    expect(encoded).not.toContain(Buffer.from(PASSWORD).toString('base64url'))
  })
})

describe('verifyPassword', () => {
  it('accepts the password the hash was made from', async () => {
    const parsed = parsePasswordHash(await hashPassword(PASSWORD, FAST))
    expect(await verifyPassword(Buffer.from(PASSWORD, 'utf8'), parsed)).toBe(true)
  })

  it('round-trips non-ASCII passwords as UTF-8', async () => {
    const password = 'pässwörd-密码-🔑'
    const parsed = parsePasswordHash(await hashPassword(password, FAST))
    expect(await verifyPassword(Buffer.from(password, 'utf8'), parsed)).toBe(true)
    expect(await verifyPassword(Buffer.from(password, 'latin1'), parsed)).toBe(false)
  })

  it('refuses a wrong password, a prefix of the password, a longer one and an empty one', async () => {
    const parsed = parsePasswordHash(await hashPassword(PASSWORD, FAST))
    for (const wrong of ['correct horse battery stapl', `${PASSWORD} `, 'Correct horse battery staple', '']) {
      expect(await verifyPassword(Buffer.from(wrong), parsed), wrong).toBe(false)
    }
  })

  it('accepts an empty password when that is what was hashed', async () => {
    const parsed = parsePasswordHash(await hashPassword('', FAST))
    expect(await verifyPassword(Buffer.alloc(0), parsed)).toBe(true)
    expect(await verifyPassword(Buffer.from(' '), parsed)).toBe(false)
  })

  it('refuses the right password against a hash with one byte changed', async () => {
    const encoded = await hashPassword(PASSWORD, FAST)
    const [, , params, salt, hash] = encoded.split('$') as [string, string, string, string, string]
    const hashBytes = Buffer.from(hash, 'base64url')
    hashBytes[0]! ^= 0x01
    const tamperedHash = encode(params, salt, hashBytes.toString('base64url'))
    expect(await verifyPassword(Buffer.from(PASSWORD), parsePasswordHash(tamperedHash))).toBe(false)

    const saltBytes = Buffer.from(salt, 'base64url')
    saltBytes[15]! ^= 0x80
    const tamperedSalt = encode(params, saltBytes.toString('base64url'), hash)
    expect(await verifyPassword(Buffer.from(PASSWORD), parsePasswordHash(tamperedSalt))).toBe(false)
  })

  it('refuses the right password when the hash claims other parameters', async () => {
    const encoded = await hashPassword(PASSWORD, FAST)
    const withOtherR = encoded.replace('$ln=10,r=8,p=1$', '$ln=10,r=4,p=1$')
    expect(withOtherR).not.toBe(encoded)
    expect(await verifyPassword(Buffer.from(PASSWORD), parsePasswordHash(withOtherR))).toBe(false)
  })

  it('accepts a password of exactly 1024 bytes and refuses one of 1025 bytes without deriving', async () => {
    const atLimit = 'x'.repeat(1024)
    const parsedAtLimit = parsePasswordHash(await hashPassword(atLimit, FAST))
    expect(await verifyPassword(Buffer.from(atLimit), parsedAtLimit)).toBe(true)

    // Even the right password is refused once it is over the limit.
    const overLimit = 'x'.repeat(1025)
    const parsedOverLimit = parsePasswordHash(await hashPassword(overLimit, FAST))
    expect(await verifyPassword(Buffer.from(overLimit), parsedOverLimit)).toBe(false)
  })

  it('counts the limit in bytes, not characters', async () => {
    const password = 'é'.repeat(513) // 513 characters, 1026 bytes
    const parsed = parsePasswordHash(await hashPassword(password, FAST))
    expect(Buffer.byteLength(password)).toBe(1026)
    expect(await verifyPassword(Buffer.from(password), parsed)).toBe(false)
  })
})

describe('verifyAgainstDummy', () => {
  it('resolves false for any password, even an empty or oversize one', async () => {
    expect(await verifyAgainstDummy(Buffer.from(PASSWORD))).toBe(false)
    expect(await verifyAgainstDummy(Buffer.alloc(0))).toBe(false)
    expect(await verifyAgainstDummy(Buffer.alloc(4096, 0x61))).toBe(false)
  })
})

describe('parsePasswordHash', () => {
  it('reads parameters, salt and hash', () => {
    const parsed = parsePasswordHash(encode('ln=12,r=4,p=2'))
    expect(parsed).toEqual({
      params: { ln: 12, r: 4, p: 2 },
      salt: Buffer.alloc(16, 1),
      hash: Buffer.alloc(32, 2),
    })
  })

  it('accepts the bounds of every parameter and of the salt and hash sizes', () => {
    expect(parsePasswordHash(encode('ln=10,r=1,p=1')).params).toEqual({ ln: 10, r: 1, p: 1 })
    expect(parsePasswordHash(encode('ln=18,r=8,p=4')).params).toEqual({ ln: 18, r: 8, p: 4 })
    expect(parsePasswordHash(encode('ln=10,r=16,p=4')).params).toEqual({ ln: 10, r: 16, p: 4 })
    const eight = Buffer.alloc(8, 3).toString('base64url')
    const sixteen = Buffer.alloc(16, 4).toString('base64url')
    const sixtyFour = Buffer.alloc(64, 5).toString('base64url')
    expect(parsePasswordHash(encode('ln=10,r=8,p=1', eight, sixteen)).salt).toHaveLength(8)
    expect(parsePasswordHash(encode('ln=10,r=8,p=1', eight, sixtyFour)).hash).toHaveLength(64)
  })

  it('refuses what is not an scrypt hash', () => {
    const why = 'is not an scrypt hash'
    expect(formatError('')).toContain(why)
    expect(formatError(`$argon2id$v=19$m=65536,t=3,p=4$${SALT}$${HASH}`)).toContain(why)
    expect(formatError(`$2b$12$${SALT}${HASH}`)).toContain(why)
    expect(formatError(`scrypt$ln=10,r=8,p=1$${SALT}$${HASH}`)).toContain(why)
    expect(formatError(`x$scrypt$ln=10,r=8,p=1$${SALT}$${HASH}`)).toContain(why)
    expect(formatError(`$scrypt$ln=10,r=8,p=1$${SALT}`)).toContain(why)
    expect(formatError(`${encode('ln=10,r=8,p=1')}$extra`)).toContain(why)
    expect(formatError(encode('ln=10,r=8,p=1').replace('scrypt', 'SCRYPT'))).toContain(why)
  })

  it('refuses unreadable parameters', () => {
    const why = 'has unreadable parameters'
    for (const params of [
      '',
      'ln=10,r=8',
      'ln=10,p=1,r=8',
      'ln=10, r=8, p=1',
      'ln=-10,r=8,p=1',
      'ln=1e1,r=8,p=1',
      'ln=10.5,r=8,p=1',
      'ln=ten,r=8,p=1',
      'N=1024,r=8,p=1',
      'ln=10,r=8,p=1,x=1',
    ]) {
      expect(formatError(encode(params)), params).toContain(why)
    }
  })

  it('refuses each parameter just outside its bounds, naming it', () => {
    expect(formatError(encode('ln=9,r=8,p=1'))).toContain('has ln=9 outside 10..18')
    expect(formatError(encode('ln=19,r=8,p=1'))).toContain('has ln=19 outside 10..18')
    expect(formatError(encode('ln=10,r=0,p=1'))).toContain('has r=0 outside 1..16')
    expect(formatError(encode('ln=10,r=17,p=1'))).toContain('has r=17 outside 1..16')
    expect(formatError(encode('ln=10,r=8,p=0'))).toContain('has p=0 outside 1..4')
    expect(formatError(encode('ln=10,r=8,p=5'))).toContain('has p=5 outside 1..4')
    expect(formatError(encode('ln=99999999999999999999,r=8,p=1'))).toContain('outside 10..18')
    // Each parameter within its bounds, but together over the memory ceiling (128 * 2^18 * 16 = 512 MiB).
    expect(formatError(encode('ln=18,r=16,p=1'))).toContain('needs more than 256 MiB of memory')
  })

  it('refuses a salt or hash of the wrong size', () => {
    const why = 'has a salt or hash of the wrong size'
    const bytes = (n: number) => Buffer.alloc(n, 7).toString('base64url')
    expect(formatError(encode('ln=10,r=8,p=1', bytes(7), HASH))).toContain(why)
    expect(formatError(encode('ln=10,r=8,p=1', '', HASH))).toContain(why)
    expect(formatError(encode('ln=10,r=8,p=1', SALT, bytes(15)))).toContain(why)
    expect(formatError(encode('ln=10,r=8,p=1', SALT, bytes(65)))).toContain(why)
    expect(formatError(encode('ln=10,r=8,p=1', SALT, ''))).toContain(why)
  })

  it('never quotes the input, so a plaintext password pasted as a hash does not reach logs', () => {
    const pasted = 'hunter2-my-secret'
    expect(formatError(pasted)).not.toContain(pasted)
    expect(formatError(`$scrypt$${pasted}$${SALT}$${HASH}`)).not.toContain(pasted)
    const saltSecret = 'c2VjcmV0' // a short "salt" that is really something else
    expect(formatError(encode('ln=10,r=8,p=1', saltSecret, HASH))).not.toContain(saltSecret)
    expect(formatError(encode('ln=10,r=8,p=1', SALT, 'c2VjcmV0'))).not.toContain(SALT)
  })
})

describe('$scrypt-pepper$ hashes', () => {
  const pepper = pepperFrom(Buffer.alloc(32, 0x5c))
  const otherPepper = pepperFrom(Buffer.alloc(32, 0x5d))
  const peppered = (params: string, salt = SALT, hash = HASH) => `$scrypt-pepper$${params}$${salt}$${hash}`

  it('writes $scrypt-pepper$id=<pepper id>,ln,r,p$salt$hash, at PEPPERED_SCRYPT by default', async () => {
    const encoded = await hashPassword(PASSWORD, undefined, pepper)
    expect(encoded).toMatch(
      new RegExp(
        `^\\$scrypt-pepper\\$id=${pepper.id},ln=10,r=8,p=1\\$[A-Za-z0-9_-]{22}\\$[A-Za-z0-9_-]{43}$`,
      ),
    )
    expect(PEPPERED_SCRYPT).toEqual({ ln: 10, r: 8, p: 1 })
    expect(DEFAULT_SCRYPT).toEqual({ ln: 14, r: 8, p: 1 })
    expect(parsePasswordHash(encoded)).toMatchObject({ params: PEPPERED_SCRYPT, pepperId: pepper.id })
  })

  it('accepts the password with the pepper it was made with', async () => {
    const parsed = parsePasswordHash(await hashPassword(PASSWORD, FAST, pepper))
    expect(parsed.params).toEqual(FAST)
    expect(await verifyPassword(Buffer.from(PASSWORD), parsed, pepper)).toBe(true)
  })

  it('refuses a wrong password, an empty one and one over 1024 bytes', async () => {
    const parsed = parsePasswordHash(await hashPassword(PASSWORD, FAST, pepper))
    for (const wrong of ['correct horse battery stapl', `${PASSWORD} `, '', 'x'.repeat(1025)]) {
      expect(await verifyPassword(Buffer.from(wrong), parsed, pepper), wrong).toBe(false)
    }
  })

  it('refuses the right password with another pepper, or with none', async () => {
    const parsed = parsePasswordHash(await hashPassword(PASSWORD, FAST, pepper))
    expect(await verifyPassword(Buffer.from(PASSWORD), parsed, otherPepper)).toBe(false)
    expect(await verifyPassword(Buffer.from(PASSWORD), parsed)).toBe(false)
  })

  it('is not the plain hash of the password, nor of its HMAC read as a $scrypt$ hash', async () => {
    const encoded = await hashPassword(PASSWORD, FAST, pepper)
    const [, , , salt, hash] = encoded.split('$') as [string, string, string, string, string]
    const asPlain = parsePasswordHash(encode('ln=10,r=8,p=1', salt, hash))
    expect(asPlain.pepperId).toBeUndefined()
    expect(await verifyPassword(Buffer.from(PASSWORD), asPlain)).toBe(false)
    expect(await verifyPassword(Buffer.from(PASSWORD), asPlain, pepper)).toBe(false)
  })

  it('a $scrypt$ hash ignores a pepper: old hashes keep working once a pepper is configured', async () => {
    const parsed = parsePasswordHash(await hashPassword(PASSWORD, FAST))
    expect(await verifyPassword(Buffer.from(PASSWORD), parsed, pepper)).toBe(true)
  })

  it('holds its parameters to the same bounds as $scrypt$', () => {
    const id = `id=${pepper.id}`
    const err = (encoded: string) => thrownBy(() => parsePasswordHash(encoded)) as GatewayError
    expect(parsePasswordHash(peppered(`${id},ln=10,r=1,p=1`)).params).toEqual({ ln: 10, r: 1, p: 1 })
    expect(parsePasswordHash(peppered(`${id},ln=18,r=8,p=4`)).params).toEqual({ ln: 18, r: 8, p: 4 })
    expect(err(peppered(`${id},ln=9,r=8,p=1`)).message).toContain('has ln=9 outside 10..18')
    expect(err(peppered(`${id},ln=19,r=8,p=1`)).message).toContain('has ln=19 outside 10..18')
    expect(err(peppered(`${id},ln=10,r=17,p=1`)).message).toContain('has r=17 outside 1..16')
    expect(err(peppered(`${id},ln=10,r=8,p=5`)).message).toContain('has p=5 outside 1..4')
    expect(err(peppered(`${id},ln=18,r=16,p=1`)).message).toContain('needs more than 256 MiB of memory')
    expect(err(peppered(`${id},ln=10,r=8,p=1`, Buffer.alloc(7).toString('base64url'))).message).toContain(
      'has a salt or hash of the wrong size',
    )
  })

  it('needs a pepper id of 8 lower-case hex digits, before the parameters', () => {
    for (const params of [
      'ln=10,r=8,p=1',
      `ln=10,r=8,p=1,id=${pepper.id}`,
      'id=1234567,ln=10,r=8,p=1',
      'id=123456789,ln=10,r=8,p=1',
      'id=ABCDEF01,ln=10,r=8,p=1',
      'id=,ln=10,r=8,p=1',
    ]) {
      expect(formatError(peppered(params)), params).toContain('has unreadable parameters')
    }
    // The id belongs to the peppered form only.
    expect(formatError(encode(`id=${pepper.id},ln=10,r=8,p=1`))).toContain('has unreadable parameters')
  })
})

describe('defaultScryptConcurrency', () => {
  it('with only peppered hashes leaves a core to the event loop: 1 on 1 or 2 cores, 2 from 3 cores on', () => {
    expect([1, 2, 3, 4, 64].map((cores) => defaultScryptConcurrency(cores, false))).toEqual([1, 1, 2, 2, 2])
  })

  it('with $scrypt$ hashes uses every core, at most 2: 1 on 1 core, 2 from 2 cores on', () => {
    expect([1, 2, 3, 64].map((cores) => defaultScryptConcurrency(cores, true))).toEqual([1, 2, 2, 2])
    expect(defaultScryptConcurrency(2)).toBe(2)
  })
})

describe('a check no one waits for', () => {
  it('is given up before its scrypt starts when `wanted` says so, and runs when it does not', async () => {
    const parsed = parsePasswordHash(await hashPassword(PASSWORD, FAST))
    let asked = 0
    const err = await rejectionOf(
      verifyPassword(Buffer.from(PASSWORD), parsed, undefined, () => {
        asked++
        return false
      }),
    )
    expect(err).toBeInstanceOf(PasswordCheckAbandoned)
    expect((err as Error).message).toBe('the client closed before its password check started')
    expect(asked).toBe(1)
    expect(await verifyPassword(Buffer.from(PASSWORD), parsed, undefined, () => true)).toBe(true)
    expect(await rejectionOf(verifyAgainstDummy(Buffer.from(PASSWORD), () => false))).toBeInstanceOf(
      PasswordCheckAbandoned,
    )
  })
})
