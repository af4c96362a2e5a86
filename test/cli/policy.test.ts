import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse, stringify } from 'yaml'
import { hashPassword } from '../../gateway/index.js'
import { mintLabPki } from '../../pki/index.js'
import { mosquittoPasswd } from '../helpers/mosquitto-passwd.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { runCli } from './run-cli.js'

describe('edge-gateway policy and device commands', () => {
  let dir: string
  let configFile: string

  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-policy-cli-')
    const pki = await mintLabPki(join(dir, 'pki'))
    configFile = join(dir, 'gateway.yaml')
    const config = {
      gateway: { id: 'gw' },
      lan: { listeners: [{ type: 'tcp', port: 0 }] },
      devices: [
        {
          id: 'meter-1',
          username: 'meter-1',
          passwordHash: await hashPassword('meter-password'),
          groups: ['meters'],
        },
      ],
      policies: {
        rules: [
          { name: 'own', who: 'everyone', topic: 'devices/%d/#', action: 'both' },
          {
            name: 'meters report',
            who: { group: 'meters' },
            topic: 'meters/%d/kwh',
            action: 'publish',
            maxQos: 1,
          },
        ],
      },
      cloud: {
        host: '127.0.0.1',
        caFile: pki.caFile,
        certFile: pki.clientCertFile,
        keyFile: pki.clientKeyFile,
        topics: [{ local: 'devices/', cloud: 'gw/' }],
      },
    }
    await writeFile(configFile, stringify(config), { mode: 0o600 })
  })

  afterAll(async () => {
    await removeDir(dir)
  })

  it('policy explain: an allowed publish names the deciding rule (exit 0)', async () => {
    const result = await runCli([
      'policy',
      'explain',
      '-c',
      configFile,
      '--device',
      'meter-1',
      '--publish',
      'meters/meter-1/kwh',
      '--qos',
      '1',
    ])
    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(/^ALLOW/)
    expect(result.stdout).toContain('meters report')
  })

  it('policy explain: a denied publish says why (exit 1)', async () => {
    const qos = await runCli([
      'policy',
      'explain',
      '-c',
      configFile,
      '--device',
      'meter-1',
      '--publish',
      'meters/meter-1/kwh',
      '--qos',
      '2',
    ])
    expect(qos.code).toBe(1)
    expect(qos.stdout).toMatch(/^DENY/)
    expect(qos.stdout).toContain('meters report')
    const other = await runCli([
      'policy',
      'explain',
      '-c',
      configFile,
      '--device',
      'meter-1',
      '--subscribe',
      'meters/#',
    ])
    expect(other.code).toBe(1)
    expect(other.stdout).toMatch(/^DENY/)
  })

  it('policy check: validates without starting', async () => {
    const result = await runCli(['policy', 'check', '-c', configFile])
    expect(result).toMatchObject({ code: 0 })
    expect(result.stdout).toBe('ok: 1 device(s), 2 rule(s), denied PUBLISH: disconnect\n')
  })

  it('policy import-mosquitto: converts the files and reports every line it could not map', async () => {
    const passwordFile = join(dir, 'passwd')
    await mosquittoPasswd(['-c', '-b', passwordFile, 'alice', 'alice-secret'])
    const pskFile = join(dir, 'psk')
    await writeFile(pskFile, 'sensor-9:00112233445566778899aabbccddeeff\nbroken line without colon\n')
    const aclFile = join(dir, 'acl')
    await writeFile(
      aclFile,
      'user alice\ntopic readwrite home/alice/#\ntopic sideways home/x\npattern read clients/%c/#\n',
    )
    const out = join(dir, 'imported')
    const result = await runCli([
      'policy',
      'import-mosquitto',
      '--acl-file',
      aclFile,
      '--password-file',
      passwordFile,
      '--psk-file',
      pskFile,
      '--out',
      out,
    ])
    expect(result.code).toBe(0)
    expect(result.stdout).toContain(`imported 2 device(s) and 2 rule(s) into ${out}`)
    expect(result.stdout).toContain(`not imported: ${pskFile}:2:`)
    expect(result.stdout).toContain(`not imported: ${aclFile}:3:`)

    const devices = parse(await readFile(join(out, 'devices.yaml'), 'utf8')) as {
      devices: Array<Record<string, unknown>>
    }
    expect(devices.devices.map((d) => d.id).sort()).toEqual(['alice', 'sensor-9'])
    expect(String(devices.devices.find((d) => d.id === 'alice')?.passwordHash)).toMatch(/^\$7\$101\$/)
    const keyFile = join(out, 'keys', 'sensor-9.psk')
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600)
    expect((await readFile(keyFile, 'utf8')).trim()).toBe('00112233445566778899aabbccddeeff')
    const policy = parse(await readFile(join(out, 'policies.yaml'), 'utf8')) as {
      rules: Array<Record<string, unknown>>
    }
    expect(policy.rules).toEqual([
      expect.objectContaining({ who: { username: 'alice' }, topic: 'home/alice/#', action: 'both' }),
      expect.objectContaining({ who: 'everyone', topic: 'clients/%c/#', action: 'subscribe' }),
    ])
  })

  it('device add --sealed: makes a master secret (0600), prints the entry and, once, what the firmware needs', async () => {
    const keyDir = join(dir, 'sealed-keys')
    const result = await runCli(['device', 'add', 'meter-9', '--sealed', '--kid', '2a', '--key-dir', keyDir])
    expect(result.code).toBe(0)
    const [entry] = parse(result.stdout) as Array<Record<string, unknown>>
    const secretFile = join(keyDir, 'meter-9.secret')
    expect(entry).toEqual({
      id: 'meter-9',
      username: 'meter-9',
      payloadKey: { kid: '2a', secretFile, aead: 'AES-CCM-16-64-128' },
    })
    expect((await stat(secretFile)).mode & 0o777).toBe(0o600)
    const secret = (await readFile(secretFile, 'utf8')).trim()
    expect(secret).toMatch(/^[0-9a-f]{32}$/)
    expect(result.stderr).toContain(`master secret:  ${secret}`)
    expect(result.stderr).toContain('key id (kid):   2a   { 0x2a }')
    expect(result.stdout).not.toContain(secret)
  })

  it('device add: makes a PSK key file (0600) and prints the config entry', async () => {
    const result = await runCli([
      'device',
      'add',
      'valve-3',
      '--psk',
      '--key-dir',
      join(dir, 'keys'),
      '--group',
      'valves',
    ])
    expect(result.code).toBe(0)
    const [entry] = parse(result.stdout) as Array<Record<string, unknown>>
    expect(entry).toMatchObject({
      id: 'valve-3',
      psk: { identity: 'valve-3', keyFile: join(dir, 'keys', 'valve-3.psk') },
      groups: ['valves'],
    })
    expect((await stat(join(dir, 'keys', 'valve-3.psk'))).mode & 0o777).toBe(0o600)
    expect(result.stdout).not.toMatch(/[0-9a-f]{32}/)
  })

  it('device add never replaces a key file (the device holding it would be locked out), and writes nothing then', async () => {
    const keyDir = join(dir, 'keys')
    const pskFile = join(keyDir, 'valve-3.psk')
    const before = await readFile(pskFile, 'utf8')
    const again = await runCli(['device', 'add', 'valve-3', '--psk', '--sealed', '--key-dir', keyDir])
    expect(again.code).toBe(2)
    expect(again.stderr).toBe(
      `edge-gateway: ${pskFile} exists: a device's key file is never overwritten (the device using it would be locked out); for a new PSK use \`device rotate\`, or pass --key-dir, or remove the file first [CLI_ERR_USAGE]\n`,
    )
    expect(again.stdout).toBe('')
    expect(await readFile(pskFile, 'utf8')).toBe(before)
    // Nothing else was written either: not the sealed device's secret asked for beside it.
    await expect(stat(join(keyDir, 'valve-3.secret'))).rejects.toMatchObject({ code: 'ENOENT' })
    const sealedDir = join(dir, 'sealed-keys')
    const secretBefore = await readFile(join(sealedDir, 'meter-9.secret'), 'utf8')
    const sealed = await runCli(['device', 'add', 'meter-9', '--sealed', '--key-dir', sealedDir])
    expect(sealed.code).toBe(2)
    expect(sealed.stderr).toContain(`${join(sealedDir, 'meter-9.secret')} exists`)
    expect(await readFile(join(sealedDir, 'meter-9.secret'), 'utf8')).toBe(secretBefore)
  })

  it('a usage mistake is one line naming what was expected, exit 2 (not an unexpected error)', async () => {
    const none = await runCli(['device', 'add', 'valve-9'])
    expect(none.code).toBe(2)
    expect(none.stderr).toBe(
      'edge-gateway: Expected --username, --psk and/or --sealed: a device needs a credential [CLI_ERR_USAGE]\n',
    )
    const kid = await runCli([
      'device',
      'add',
      'valve-9',
      '--psk',
      '--sealed',
      '--kid',
      'zz',
      '--key-dir',
      join(dir, 'k9'),
    ])
    expect(kid.code).toBe(2)
    expect(kid.stderr).toBe(
      'edge-gateway: Expected --kid to be 1 to 6 bytes as hex, got `zz` [CLI_ERR_USAGE]\n',
    )
    // Refused before anything was written: a retry with a good --kid is not blocked by a PSK file.
    await expect(stat(join(dir, 'k9', 'valve-9.psk'))).rejects.toMatchObject({ code: 'ENOENT' })
  })
})
