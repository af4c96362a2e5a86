import { describe, expect, it } from 'vitest'
import { ipToBytes } from '../../pki/ip-bytes.js'

function hex(bytes: string | null): string | null {
  return bytes === null ? null : Buffer.from(bytes, 'latin1').toString('hex')
}

describe('ipToBytes', () => {
  it.each([
    ['127.0.0.1', '7f000001'],
    ['10.255.0.9', '0aff0009'],
    ['::1', '00000000000000000000000000000001'],
    ['::', '00000000000000000000000000000000'],
    ['1::', '00010000000000000000000000000000'],
    ['2001:db8::8a2e:370:7334', '20010db80000000000008a2e03707334'],
    ['fe80:0:0:0:0:0:0:1', 'fe800000000000000000000000000001'],
    ['::ffff:10.0.0.1', '00000000000000000000ffff0a000001'],
    ['64:ff9b::192.0.2.33', '0064ff9b0000000000000000c0000221'],
  ])('encodes %s as %s', (ip, expected) => {
    expect(hex(ipToBytes(ip))).toBe(expected)
  })

  it.each(['localhost', 'fe80::1%eth0', '1.2.3', '01.2.3.4', '1::2::3', ''])(
    'returns null for %j',
    (text) => {
      expect(ipToBytes(text)).toBeNull()
    },
  )
})
