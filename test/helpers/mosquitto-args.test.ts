import { describe, expect, it } from 'vitest'
import { connectionArgs } from './mosquitto-args.js'

describe('connectionArgs', () => {
  it('passes only host and port by default', () => {
    expect(connectionArgs({ host: '127.0.0.1', port: 1 })).toEqual(['-h', '127.0.0.1', '-p', '1'])
  })

  it('maps every option to its flag, as separate argv entries', () => {
    expect(
      connectionArgs({
        host: '::1',
        port: 8883,
        qos: 2,
        clientId: 'id with space',
        username: 'u',
        password: 'p;rm -rf',
        caFile: '/ca',
        certFile: '/cert',
        keyFile: '/key',
        psk: { identity: 'dev-1', keyHex: 'deadbeef' },
        tlsVersion: 'tlsv1.2',
      }),
    ).toEqual([
      '-h',
      '::1',
      '-p',
      '8883',
      '-q',
      '2',
      '-i',
      'id with space',
      '-u',
      'u',
      '-P',
      'p;rm -rf',
      '--cafile',
      '/ca',
      '--cert',
      '/cert',
      '--key',
      '/key',
      '--psk',
      'deadbeef',
      '--psk-identity',
      'dev-1',
      '--tls-version',
      'tlsv1.2',
    ])
  })
})
