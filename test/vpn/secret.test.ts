import { inspect } from 'node:util'
import { describe, expect, it } from 'vitest'
import { keyTokens, redact } from '../../vpn/redact.js'
import { isWireGuardKey, SecretKey } from '../../vpn/secret.js'
import { thrownBy } from '../helpers/catch.js'

const key = Buffer.alloc(32, 0xa1).toString('base64')

describe('SecretKey', () => {
  it('prints, serialises and inspects as [redacted]; reveal() gives the key', () => {
    const secret = new SecretKey(key)
    expect(String(secret)).toBe('[redacted]')
    expect(`${secret}`).toBe('[redacted]')
    expect(JSON.stringify({ secret })).toBe('{"secret":"[redacted]"}')
    expect(inspect({ secret })).toBe('{ secret: SecretKey([redacted]) }')
    expect(secret.reveal()).toBe(key)
  })

  it('refuses what is not a 32-byte base64 key, without quoting it', () => {
    const err = thrownBy(() => new SecretKey('hunter2-but-longer', 'private key'))
    expect(err).toMatchObject({
      code: 'VPN_ERR_BAD_KEY',
      message:
        'Expected the private key to be a WireGuard key (32 bytes in base64, 44 characters), got 18 characters',
    })
  })

  it('checks the key shape exactly: 43 characters, the last carrying 4 bits, then =', () => {
    expect(isWireGuardKey(key)).toBe(true)
    expect(isWireGuardKey(`${key.slice(0, 42)}B=`)).toBe(false)
    expect(isWireGuardKey(`${key}\n`)).toBe(false)
    expect(isWireGuardKey(key.slice(1))).toBe(false)
  })
})

describe('redact', () => {
  it('replaces every listed secret and every PrivateKey/PresharedKey value', () => {
    const text = `Key is not the correct length or format: \`${key}x'\nPrivateKey = abc\npresharedKey: def`
    expect(redact(text, [key])).toBe(
      "Key is not the correct length or format: `[redacted]x'\nPrivateKey = [redacted]\npresharedKey: [redacted]",
    )
  })

  it('leaves other text alone and ignores secrets too short to be keys', () => {
    expect(redact('RTNETLINK answers: File exists', ['a', ''])).toBe('RTNETLINK answers: File exists')
  })

  it('finds the keys inside a config', () => {
    const other = Buffer.alloc(32, 0xb2).toString('base64')
    expect(keyTokens(`PrivateKey = ${key}\nPublicKey = ${other}\nPublicKey = ${other}\n`)).toEqual([
      key,
      other,
    ])
  })
})
