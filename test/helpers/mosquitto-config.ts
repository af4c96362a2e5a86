import { userInfo } from 'node:os'
import { join } from 'node:path'

export interface CloudMosquittoConfig {
  dir: string
  host: string
  port: number
  caFile: string
  certFile: string
  keyFile: string
  persistence: boolean
  extraConfig: readonly string[]
}

/**
 * mosquitto.conf for a cloud broker that authenticates clients by certificate
 * only: mutual TLS (TLS 1.2 and 1.3), the certificate CN as username. Pure, so
 * the exact text can be asserted.
 */
export function cloudMosquittoConf(config: CloudMosquittoConfig): string {
  const values = [
    config.dir,
    config.host,
    config.caFile,
    config.certFile,
    config.keyFile,
    ...config.extraConfig,
  ]
  const bad = values.find((value) => /[\r\n]/.test(value))
  if (bad !== undefined) {
    throw new Error(`Expected mosquitto config values without line breaks, got ${JSON.stringify(bad)}`)
  }
  return [
    '# Written by test/helpers/mosquitto-config.ts',
    'per_listener_settings false',
    // Authentication is the client certificate (require_certificate below).
    'allow_anonymous true',
    // Run as root, mosquitto 2 switches to user "mosquitto", which cannot read
    // our 0600 keys or write the 0700 dir; as anyone else this line is ignored.
    `user ${userInfo().username}`,
    `persistence ${config.persistence}`,
    `persistence_location ${config.dir}/`,
    `log_dest file ${join(config.dir, 'mosquitto.log')}`,
    'log_type all',
    'log_timestamp_format %Y-%m-%dT%H:%M:%S',
    `listener ${config.port} ${config.host}`,
    `cafile ${config.caFile}`,
    `certfile ${config.certFile}`,
    `keyfile ${config.keyFile}`,
    'require_certificate true',
    'use_identity_as_username true',
    ...config.extraConfig,
    '',
  ].join('\n')
}
