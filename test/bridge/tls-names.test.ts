import type { PeerCertificate } from 'node:tls'
import { describe, expect, it } from 'vitest'
import { tlsNameOptions } from '../../bridge/cloud-link.js'

const cert = (subjectaltname: string) =>
  ({ subject: { CN: 'broker' }, subjectaltname }) as unknown as PeerCertificate

describe('tlsNameOptions: a DNS name is sent as SNI, an IP address never is', () => {
  it('a host name (or servername) is the SNI', () => {
    expect(tlsNameOptions('broker.example.net', undefined)).toEqual({ servername: 'broker.example.net' })
    expect(tlsNameOptions('10.8.0.1', 'broker.example.net')).toEqual({ servername: 'broker.example.net' })
  })

  it('an IP address is not sent, but the certificate must still name it', () => {
    for (const [host, servername, ip] of [
      ['127.0.0.1', undefined, '127.0.0.1'],
      ['broker.example.net', '10.8.0.1', '10.8.0.1'],
      ['::1', undefined, '::1'],
    ] as const) {
      const options = tlsNameOptions(host, servername)
      expect('servername' in options).toBe(false)
      if (!('checkServerIdentity' in options)) throw new Error('no identity check')
      expect(options.checkServerIdentity(host, cert(`IP Address:${ip}`))).toBeUndefined()
      expect(options.checkServerIdentity(host, cert('IP Address:192.0.2.9'))?.message).toMatch(
        /IP: .* is not in the cert's list/,
      )
    }
  })
})
