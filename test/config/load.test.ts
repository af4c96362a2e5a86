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

describe('checkConfigFiles: every secret file the config names must be 0600 or tighter', () => {
  // Each field that names a secret (docs/configuration.md), with a file of the right kind.
  const secrets: Array<[path: string, file: string, content: string]> = [
    ['cloud.keyFile', 'pki/client.key', 'x'],
    ['devices[1].psk.keyFile', 'keys/valve-2.psk', 'x'],
    ['devices[1].psk.previous.keyFile', 'keys/valve-2.old.psk', 'x'],
    ['devices[2].payloadKey.secretFile', 'keys/tiny.secret', 'x'],
    ['devices[2].payloadKey.previous.secretFile', 'keys/tiny.old.secret', 'x'],
    ['lan.passwordPepperFile', 'keys/password.pepper', 'x'],
    ['lan.listeners[2].keyFile', 'pki/server.key', 'x'],
    ['observability.tokenFile', 'keys/metrics.token', 'a'.repeat(32)],
    ['mosquitto.passwordFile', 'mosquitto/passwd', 'x'],
    ['mosquitto.pskFile', 'mosquitto/psk', 'x'],
  ]
  const text = valid
    .replace('lan:\n', 'lan:\n  passwordPepperFile: keys/password.pepper\n')
    .replace(
      '      port: 8883\n',
      '      port: 8883\n    - type: tls\n      port: 8884\n      certFile: pki/server.pem\n      keyFile: pki/server.key\n      caFile: pki/ca.pem\n',
    )
    .replace(
      '      keyFile: keys/valve-2.psk\n',
      '      keyFile: keys/valve-2.psk\n      previous: { identity: valve-2-old, keyFile: keys/valve-2.old.psk, until: "2030-01-01T00:00:00Z" }\n' +
        '  - id: tiny\n    payloadKey:\n      kid: "01"\n      secretFile: keys/tiny.secret\n' +
        '      previous: { kid: "02", secretFile: keys/tiny.old.secret, until: "2030-01-01T00:00:00Z" }\n',
    )
    .concat(
      'mosquitto:\n  passwordFile: mosquitto/passwd\n  pskFile: mosquitto/psk\n',
      'observability:\n  listen: 127.0.0.1:9464\n  tokenFile: keys/metrics.token\n',
    )

  it('refuses each one at 0644, naming it, and accepts them all at 0600', async () => {
    const dir = await makeTempDir('edge-gw-secret-modes-')
    try {
      for (const sub of ['pki', 'keys', 'mosquitto']) await mkdir(join(dir, sub))
      for (const f of ['pki/ca.pem', 'pki/client.pem', 'pki/server.pem']) await writeFile(join(dir, f), 'x')
      for (const [, f, content] of secrets) await writeFile(join(dir, f), content, { mode: 0o600 })
      const file = join(dir, 'gateway.yaml')
      const config = parseConfig(text, { file, baseDir: dir })
      await checkConfigFiles(config, file)
      for (const [path, f] of secrets) {
        const full = join(dir, f)
        await chmod(full, 0o644)
        expect(await rejectionOf(checkConfigFiles(config, file)), path).toMatchObject({
          code: 'CONFIG_ERR_SECRET_FILE',
          message: `${file}: ${path}: ${full} has mode 0644; a key file must be 0600 or tighter (chmod 600 ${full})`,
        })
        await chmod(full, 0o600)
      }
      await checkConfigFiles(config, file)
    } finally {
      await removeDir(dir)
    }
  })
})

describe('parseConfig: what the config refuses to keep a promise of the docs', () => {
  const withObservability = (listen: string) => `${valid}observability:\n  listen: "${listen}"\n`

  it('serves /metrics without a token on loopback only', () => {
    for (const listen of ['127.0.0.1:9464', '127.1.2.3:9464', '[::1]:9464', 'localhost:9464']) {
      expect(parseConfig(withObservability(listen), source).observability.listen, listen).toBe(listen)
    }
    for (const [listen, host] of <Array<[string, string]>>[
      ['0.0.0.0:9464', '0.0.0.0'],
      ['10.0.0.5:9464', '10.0.0.5'],
      ['[::ffff:127.0.0.1]:9464', '::ffff:127.0.0.1'],
      ['[::]:9464', '::'],
    ]) {
      expect(errorOf(withObservability(listen)).message, listen).toContain(
        `observability.listen: ${host} is not a loopback address; set observability.tokenFile so that only holders of the token can read the metrics`,
      )
    }
    const tokened = `${valid}observability:\n  listen: 0.0.0.0:9464\n  tokenFile: keys/metrics.token\n`
    expect(parseConfig(tokened, source).observability.tokenFile).toBe('/etc/edge-gateway/keys/metrics.token')
  })

  it('wants lan.maxOutboundBytes at least twice lan.maxPacketBytes, so a subscriber that reads can take the largest message', () => {
    const text = valid.replace('lan:\n', 'lan:\n  maxPacketBytes: 1048576\n  maxOutboundBytes: 1048576\n')
    expect(errorOf(text).message).toContain(
      'lan.maxOutboundBytes: 1048576 is less than twice lan.maxPacketBytes (1048576): a subscriber that reads could not take the largest message',
    )
  })

  it('keeps device traffic out of the `$` tree: no cloud or downlink prefix may start with `$`', () => {
    const uplink = valid.replace('      cloud: gateways/gw-1/devices/', '      cloud: $gw/gw-1/')
    expect(errorOf(uplink).message).toContain(
      'cloud.topics[0]: topics starting with "$" are reserved (the control tree is "$gw/")',
    )
    const downlink = `${valid.replace('cloud:\n', 'cloud:\n  downlink:\n    topics:\n      - cloud: $gw/gw-1/cmd/\n        local: commands/\n    operators:\n      - name: ops\n        publicKeyFile: keys/ops.pub\n')}`
    expect(errorOf(downlink).message).toContain(
      'cloud.downlink.topics[0]: topics starting with "$" are reserved',
    )
  })

  it('wants a downlink cloud prefix that is a whole topic level, apart from the uplink cloud prefixes', () => {
    const withDownlink = (cloud: string) =>
      valid.replace(
        'cloud:\n',
        `cloud:\n  downlink:\n    topics:\n      - cloud: ${cloud}\n        local: commands/\n    operators:\n      - name: ops\n        publicKeyFile: keys/ops.pub\n`,
      )
    expect(errorOf(withDownlink('commands/gw-1')).message).toContain(
      'cloud.downlink.topics[0].cloud: "commands/gw-1" must end with "/": the gateway subscribes to the prefix followed by "#" ("commands/gw-1/#" for "commands/gw-1/")',
    )
    // The uplink sends to gateways/gw-1/devices/...: a downlink under it, or over it, would take those back.
    for (const cloud of ['gateways/gw-1/devices/cmd/', 'gateways/']) {
      expect(errorOf(withDownlink(cloud)).message, cloud).toContain(
        `cloud.downlink.topics[0].cloud: "${cloud}" overlaps cloud.topics[0].cloud "gateways/gw-1/devices/": the gateway would take its own messages for commands`,
      )
    }
    expect(parseConfig(withDownlink('gateways/gw-1/commands/'), source).cloud.downlink?.topics).toEqual([
      { cloud: 'gateways/gw-1/commands/', local: 'commands/' },
    ])
  })
})
