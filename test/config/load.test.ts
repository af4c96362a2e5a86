import { chmod, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ConfigError, checkConfigFiles, parseConfig } from '../../config/index.js'
import { rejectionOf } from '../helpers/catch.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'

const source = { file: '/etc/edge-gateway/gateway.yaml', baseDir: '/etc/edge-gateway' }

const valid = `
gateway:
  id: gw-1
lan:
  listeners:
    - type: tcp
      port: 1883
    - type: tls-psk
      port: 8883
devices:
  - id: sensor-1
    username: sensor-1
    passwordHash: "$scrypt$ln=14,r=8,p=1$c2FsdA$aGFzaA"
  - id: valve-2
    psk:
      identity: valve-2
      keyFile: keys/valve-2.psk
cloud:
  host: 127.0.0.1
  port: 8884
  caFile: pki/ca.pem
  certFile: pki/client.pem
  keyFile: pki/client.key
  topics:
    - local: devices/
      cloud: gateways/gw-1/devices/
`

function errorOf(text: string): ConfigError {
  try {
    parseConfig(text, source)
  } catch (err) {
    if (err instanceof ConfigError) return err
    throw err
  }
  throw new Error('expected a ConfigError')
}

describe('parseConfig', () => {
  it('applies defaults, resolves paths against the config folder and freezes', () => {
    const config = parseConfig(valid, source)
    expect(config.lan.listeners[0]).toEqual({ type: 'tcp', host: '127.0.0.1', port: 1883 })
    expect(config.lan.listeners[1]).toMatchObject({
      type: 'tls-psk',
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.3',
    })
    expect(config.devices[1]?.psk?.keyFile).toBe('/etc/edge-gateway/keys/valve-2.psk')
    expect(config.cloud.keyFile).toBe('/etc/edge-gateway/pki/client.key')
    expect(config.cloud.reconnect).toEqual({ initialDelayMs: 500, maxDelayMs: 30_000 })
    expect(config.gateway.stateDir).toBe('/etc/edge-gateway/state')
    expect(Object.isFrozen(config.cloud.topics[0])).toBe(true)
  })

  it('resolves psk.previous.keyFile (a key being rotated out) against the config folder too', () => {
    const rotating = valid.replace(
      '      keyFile: keys/valve-2.psk\n',
      '      keyFile: keys/valve-2.psk\n      previous: { identity: valve-1, keyFile: keys/valve-1.psk, until: "2026-12-31T00:00:00Z" }\n',
    )
    expect(parseConfig(rotating, source).devices[1]?.psk?.previous?.keyFile).toBe(
      '/etc/edge-gateway/keys/valve-1.psk',
    )
  })

  it('resolves lan.passwordPepperFile against the config folder; passwordChecks has its defaults', () => {
    const config = parseConfig(
      valid.replace('lan:\n', 'lan:\n  passwordPepperFile: keys/password.pepper\n'),
      source,
    )
    expect(config.lan.passwordPepperFile).toBe('/etc/edge-gateway/keys/password.pepper')
    expect(config.lan.passwordChecks).toEqual({ memoryMiB: 16, cacheEntries: 10_000 })
    expect(parseConfig(valid, source).lan.passwordPepperFile).toBeUndefined()
  })

  it('refuses passwordChecks out of bounds, quoting the number', () => {
    const withChecks = (checks: string) => valid.replace('lan:\n', `lan:\n  passwordChecks: ${checks}\n`)
    expect(errorOf(withChecks('{ concurrency: 0 }')).message).toBe(
      '/etc/edge-gateway/gateway.yaml: lan.passwordChecks.concurrency: Too small: expected number to be >=1, got 0 (number)',
    )
    expect(errorOf(withChecks('{ cacheEntries: -1 }')).message).toBe(
      '/etc/edge-gateway/gateway.yaml: lan.passwordChecks.cacheEntries: Too small: expected number to be >=0, got -1 (number)',
    )
  })

  it('refuses an unknown key, naming its path', () => {
    const err = errorOf(valid.replace('  port: 8884', '  port: 8884\n  colour: blue'))
    expect(err.code).toBe('CONFIG_ERR_SCHEMA')
    expect(err.message).toBe('/etc/edge-gateway/gateway.yaml: cloud.colour: unknown key "colour"')
  })

  it('refuses a wrong type, quoting the value and the expected type', () => {
    const err = errorOf(valid.replace('  port: 8884', '  port: "eighty"'))
    expect(err.message).toBe(
      '/etc/edge-gateway/gateway.yaml: cloud.port: expected number, got "eighty" (string)',
    )
  })

  it('refuses a missing required field', () => {
    const err = errorOf(valid.replace('  host: 127.0.0.1\n', ''))
    expect(err.message).toBe('/etc/edge-gateway/gateway.yaml: cloud.host: missing, expected string')
  })

  it('refuses client id patterns with wildcards or slashes', () => {
    const err = errorOf(
      valid.replace('    username: sensor-1\n', '    username: sensor-1\n    clientIds: ["a/b"]\n'),
    )
    expect(err.message).toContain('devices[0].clientIds[0]: no "+", "#", "/" or control characters')
  })

  it('reports YAML syntax errors with a line number, on one line', () => {
    const err = errorOf('gateway:\n  id: [unclosed\n')
    expect(err.code).toBe('CONFIG_ERR_YAML')
    expect(err.message).toMatch(/^\/etc\/edge-gateway\/gateway.yaml: line \d+, column \d+: /)
    expect(err.message).not.toContain('\n')
  })

  it('checks fields against each other', () => {
    const dup = valid.replace('  - id: valve-2', '  - id: sensor-1')
    expect(errorOf(dup).message).toContain(
      'devices[1].id: device id "sensor-1" is already used at devices[0].id',
    )
    // A token device without a username answers to its id; no other device may use that name.
    const tokenName = valid.replace(
      '  - id: valve-2\n',
      '  - id: tiny\n    payloadKey: { kid: "01", secretFile: keys/tiny.secret }\n  - id: valve-2\n    username: tiny\n',
    )
    expect(errorOf(tokenName).message).toContain(
      'devices[2].username: username "tiny" is already used at devices[1].id (the CONNECT username of a token device)',
    )
    const samePort = valid.replace('      port: 8883', '      port: 1883')
    expect(errorOf(samePort).message).toContain('lan.listeners[1]: address "127.0.0.1:1883" is already used')
    const noCredential = valid.replace(/ {4}psk:\n.*\n.*\n/, '')
    expect(errorOf(noCredential).message).toContain('devices[1]: device "valve-2" has no credential')
  })

  it('refuses a top level that is not a mapping', () => {
    expect(errorOf('- 1\n- 2\n').message).toBe(
      '/etc/edge-gateway/gateway.yaml: expected a mapping at the top level',
    )
  })
})

describe('checkConfigFiles', () => {
  it('checks lan.passwordPepperFile as a key file: present and 0600 or tighter', async () => {
    const dir = await makeTempDir('edge-gw-load-')
    try {
      await mkdir(join(dir, 'pki'))
      await mkdir(join(dir, 'keys'))
      for (const [file, mode] of [
        ['pki/ca.pem', 0o644],
        ['pki/client.pem', 0o644],
        ['pki/client.key', 0o600],
        ['keys/valve-2.psk', 0o600],
      ] as const) {
        await writeFile(join(dir, file), 'x', { mode })
        await chmod(join(dir, file), mode)
      }
      const file = join(dir, 'gateway.yaml')
      const config = parseConfig(
        valid.replace('lan:\n', 'lan:\n  passwordPepperFile: keys/password.pepper\n'),
        {
          file,
          baseDir: dir,
        },
      )
      const pepper = join(dir, 'keys/password.pepper')
      const missing = await rejectionOf(checkConfigFiles(config, file))
      expect(missing).toMatchObject({
        code: 'CONFIG_ERR_SECRET_FILE',
        message: `${file}: lan.passwordPepperFile: ${pepper} does not exist`,
      })
      await writeFile(pepper, 'x', { mode: 0o640 })
      await chmod(pepper, 0o640)
      expect(await rejectionOf(checkConfigFiles(config, file))).toMatchObject({
        code: 'CONFIG_ERR_SECRET_FILE',
        message: `${file}: lan.passwordPepperFile: ${pepper} has mode 0640; a key file must be 0600 or tighter (chmod 600 ${pepper})`,
      })
      await chmod(pepper, 0o600)
      await checkConfigFiles(config, file)
    } finally {
      await removeDir(dir)
    }
  })
})
