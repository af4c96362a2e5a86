import { userInfo } from 'node:os'
import { describe, expect, it } from 'vitest'
import { cloudMosquittoConf } from './mosquitto-config.js'

const BASE = {
  dir: '/tmp/broker',
  host: '127.0.0.1',
  port: 18883,
  caFile: '/tmp/pki/ca.pem',
  certFile: '/tmp/pki/server.pem',
  keyFile: '/tmp/pki/server.key',
  persistence: true,
  extraConfig: ['max_queued_messages 5'],
}

describe('cloudMosquittoConf', () => {
  it('writes a mutual-TLS listener that takes the certificate CN as username', () => {
    expect(cloudMosquittoConf(BASE).split('\n')).toEqual([
      '# Written by test/helpers/mosquitto-config.ts',
      'per_listener_settings false',
      'allow_anonymous true',
      `user ${userInfo().username}`,
      'persistence true',
      'persistence_location /tmp/broker/',
      'log_dest file /tmp/broker/mosquitto.log',
      'log_type all',
      'log_timestamp_format %Y-%m-%dT%H:%M:%S',
      'listener 18883 127.0.0.1',
      'cafile /tmp/pki/ca.pem',
      'certfile /tmp/pki/server.pem',
      'keyfile /tmp/pki/server.key',
      'require_certificate true',
      'use_identity_as_username true',
      'max_queued_messages 5',
      '',
    ])
  })

  it('does not pin a TLS version', () => {
    expect(cloudMosquittoConf(BASE)).not.toContain('tls_version')
  })

  it('refuses values that would inject config lines', () => {
    expect(() => cloudMosquittoConf({ ...BASE, extraConfig: ['a\nallow_anonymous true'] })).toThrow(
      'Expected mosquitto config values without line breaks, got "a\\nallow_anonymous true"',
    )
  })
})
