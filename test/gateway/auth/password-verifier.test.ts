import { pbkdf2Sync } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { hashPassword } from '../../../gateway/auth/password.js'
import { hashFingerprint, passwordVerifier } from '../../../gateway/auth/password-verifier.js'
import { pepperFrom } from '../../../gateway/auth/pepper.js'
import { GatewayError } from '../../../gateway/errors.js'
import { thrownBy } from '../../helpers/catch.js'

const FAST = { ln: 10, r: 8, p: 1 }

describe('passwordVerifier', () => {
  it('accepts the hashed password and refuses others', async () => {
    const verify = passwordVerifier(await hashPassword('s3cret', FAST))
    expect(await verify(Buffer.from('s3cret'))).toBe(true)
    expect(await verify(Buffer.from('s3cret '))).toBe(false)
    expect(await verify(Buffer.alloc(0))).toBe(false)
  })

  it('fails when built from a bad hash, not at the first verification', () => {
    const err = thrownBy(() => passwordVerifier('s3cret'))
    expect(err).toBeInstanceOf(GatewayError)
    expect(err).toMatchObject({ code: 'GW_ERR_BAD_PASSWORD_HASH' })
    expect((err as Error).message).not.toContain('s3cret')
  })
})

describe('passwordVerifier with a pepper', () => {
  const pepper = pepperFrom(Buffer.alloc(32, 0x11))
  const other = pepperFrom(Buffer.alloc(32, 0x22))

  it('checks a $scrypt-pepper$ hash with the pepper it was made with', async () => {
    const verify = passwordVerifier(await hashPassword('s3cret', FAST, pepper), pepper)
    expect(await verify(Buffer.from('s3cret'))).toBe(true)
    expect(await verify(Buffer.from('s3cret!'))).toBe(false)
  })

  it('refuses at load a $scrypt-pepper$ hash without a configured pepper', async () => {
    const encoded = await hashPassword('s3cret', FAST, pepper)
    const err = thrownBy(() => passwordVerifier(encoded))
    expect(err).toBeInstanceOf(GatewayError)
    expect(err).toMatchObject({
      code: 'GW_ERR_BAD_PASSWORD_HASH',
      message:
        'a $scrypt-pepper$ password hash needs the pepper it was made with: set lan.passwordPepperFile',
    })
  })

  it('refuses at load a hash made with another pepper, naming both ids', async () => {
    const encoded = await hashPassword('s3cret', FAST, other)
    const err = thrownBy(() => passwordVerifier(encoded, pepper))
    expect(err).toMatchObject({
      code: 'GW_ERR_BAD_PASSWORD_HASH',
      message: `a $scrypt-pepper$ password hash was made with pepper ${other.id}, but lan.passwordPepperFile holds pepper ${pepper.id}`,
    })
  })

  it('keeps $scrypt$ and Mosquitto $7$ hashes working beside a pepper', async () => {
    const plain = passwordVerifier(await hashPassword('s3cret', FAST), pepper)
    expect(await plain(Buffer.from('s3cret'))).toBe(true)
    // A $7$ hash as mosquitto_passwd writes it: PBKDF2-SHA512, 101 iterations, 12-byte salt.
    const salt = Buffer.from('saltsaltsalt')
    const hash = pbkdf2Sync('s3cret', salt, 101, 64, 'sha512')
    const mosquitto = passwordVerifier(`$7$101$${salt.toString('base64')}$${hash.toString('base64')}`, pepper)
    expect(await mosquitto(Buffer.from('s3cret'))).toBe(true)
    expect(await mosquitto(Buffer.from('s3cret!'))).toBe(false)
  })
})

describe('hashFingerprint', () => {
  it('is the same for the same hash and differs for another salt', async () => {
    const a = await hashPassword('s3cret', FAST)
    const b = await hashPassword('s3cret', FAST)
    expect(hashFingerprint(a)).toBe(hashFingerprint(a))
    expect(hashFingerprint(a)).not.toBe(hashFingerprint(b))
    expect(hashFingerprint(a)).not.toContain(a.split('$')[4]!.slice(0, 8))
  })
})
