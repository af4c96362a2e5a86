import { describe, expect, it } from 'vitest'
import { hashPassword } from '../../../gateway/auth/password.js'
import { passwordVerifier } from '../../../gateway/auth/password-verifier.js'
import { GatewayError } from '../../../gateway/errors.js'
import { thrownBy } from '../../helpers/catch.js'

describe('passwordVerifier', () => {
  it('accepts the hashed password and refuses others', async () => {
    const verify = passwordVerifier(await hashPassword('s3cret', { ln: 10, r: 8, p: 1 }))
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
