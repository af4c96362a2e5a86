import type { ChildProcess } from 'node:child_process'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { TLSSocket } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse, stringify } from 'yaml'
import { nextPskIdentity } from '../../cli/actions/device.js'
import { writeSecretFile } from '../../pki/index.js'
import { mosquittoPub } from '../helpers/mosquitto-clients.js'
import { freePort } from '../helpers/ports.js'
import { signalPid, terminate } from '../helpers/processes.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { pskConnack } from '../integration/clients.js'
import { waitUntil } from '../integration/harness.js'
import { absentCloud, runCli, startGatewayCli } from './run-cli.js'

const OLD_KEY = '0123456789abcdef0123456789abcdef'

/**
 * Issue 15, device PSK rotation, as an operator does it on the gateway: `edge-gateway device rotate`
 * gives the device a new identity and key while `edge-gateway start` runs; during the overlap the
 * device works with either key (real `mosquitto_pub --psk` clients), a connection made with the
 * old key stays up; once the overlap ends only the new key works and the old connection is closed
 * (`psk_retired`), each refusal a security event with the device.
 */
describe('edge-gateway device rotate: a TLS-PSK device across a key change', () => {
  let dir: string
  let configFile: string
  let port: number
  let child: ChildProcess
  let logs: Array<Record<string, unknown>> = []
  let newIdentity: string
  let newKeyHex: string

  const pub = (identity: string, keyHex: string, message: string) =>
    mosquittoPub({
      host: '127.0.0.1',
      port,
      psk: { identity, keyHex },
      clientId: `dev-${message}`,
      topic: 'devices/dev/telemetry',
      message,
      qos: 1,
    })
  const reloads = () => logs.filter((l) => String(l.msg).startsWith('reloaded devices and policies: '))

  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-psk-rotate-')
    await writeSecretFile(join(dir, 'keys', 'dev.psk'), `${OLD_KEY}\n`)
    port = await freePort()
    configFile = join(dir, 'gateway.yaml')
    const config = {
      gateway: { id: 'gw-psk-rotate' },
      log: { level: 'info', pretty: false },
      lan: { listeners: [{ name: 'psk', type: 'tls-psk', host: '127.0.0.1', port }] },
      devices: [
        { id: 'dev', psk: { identity: 'dev', keyFile: join(dir, 'keys', 'dev.psk') }, clientIds: ['dev-*'] },
      ],
      policies: { rules: [{ name: 'own', who: 'everyone', topic: 'devices/%d/#', action: 'both' }] },
      // Nothing listens there: the LAN side runs and reloads without the cloud.
      cloud: await absentCloud(dir),
    }
    await writeFile(configFile, `# the lab gateway; comments survive a rotation\n${stringify(config)}`, {
      mode: 0o600,
    })
    ;({ child, logs } = await startGatewayCli(configFile))
  }, 30_000)

  afterAll(async () => {
    if (child) await terminate(child)
    await removeDir(dir)
  })

  it('during the overlap: the device works with either key, and its connection made with the old key stays up', async () => {
    expect((await pub('dev', OLD_KEY, 'before')).code).toBe(0)
    const held = await pskConnack(
      port,
      { identity: 'dev', key: Buffer.from(OLD_KEY, 'hex') },
      'dev-held',
      '127.0.0.1',
    )
    expect(held.code).toBe(0)
    let heldClosed = false
    held.socket.once('close', () => {
      heldClosed = true
    })

    // The identity names the new key file: one that would put it outside the key folder is refused.
    const escaping = await runCli(['device', 'rotate', 'dev', '-c', configFile, '--identity', '../escaped'])
    expect(escaping.code).toBe(2)
    expect(escaping.stderr).toContain(
      'Expected a new PSK identity of 1 to 128 characters without "/", "\\" or control characters, not starting with ".", other than `dev`, got `../escaped` [CLI_ERR_ROTATION_REFUSED]',
    )
    await expect(stat(join(dir, 'escaped.psk'))).rejects.toMatchObject({ code: 'ENOENT' })

    const count = reloads().length
    const rotated = await runCli(['device', 'rotate', 'dev', '-c', configFile, '--overlap-hours', '24'])
    expect(rotated, rotated.stderr).toMatchObject({ code: 0 })
    expect(rotated.stderr).toContain('new PSK identity `dev-r2`')
    expect(rotated.stderr).not.toContain(OLD_KEY)
    const written = await readFile(configFile, 'utf8')
    expect(written).toContain('# the lab gateway; comments survive a rotation')
    const psk = (parse(written) as { devices: Array<{ psk: { identity: string; keyFile: string } }> })
      .devices[0]!.psk
    expect(psk).toMatchObject({
      identity: 'dev-r2',
      previous: { identity: 'dev', keyFile: join(dir, 'keys', 'dev.psk') },
    })
    expect((await stat(psk.keyFile)).mode & 0o777).toBe(0o600)
    newIdentity = psk.identity
    newKeyHex = (await readFile(psk.keyFile, 'utf8')).trim()
    expect(newKeyHex).toMatch(/^[0-9a-f]{32}$/)
    // The running gateway saw the file change and applied it.
    await waitUntil(() => reloads().length > count, 10_000, 'reload after the rotation')

    expect((await pub(newIdentity, newKeyHex, 'new-key')).code).toBe(0)
    expect((await pub('dev', OLD_KEY, 'old-key')).code).toBe(0)
    expect(heldClosed).toBe(false)
    // A second rotation while the overlap runs is refused: the old key would be dropped early.
    const again = await runCli(['device', 'rotate', 'dev', '-c', configFile])
    expect(again.code).toBe(2)
    expect(again.stderr).toMatch(/is in a PSK overlap until .* \(identity `dev` still accepted\)/)

    // The overlap ends in 3 s (an operator shortening it): the held connection is closed then, not before.
    const until = Date.now() + 3_000
    const config = parse(await readFile(configFile, 'utf8')) as {
      devices: Array<{ psk: { previous: { until: string } } }>
    }
    config.devices[0]!.psk.previous.until = new Date(until).toISOString()
    const before = reloads().length
    await writeFile(configFile, stringify(config), { mode: 0o600 })
    signalPid(child.pid, 'SIGHUP')
    await waitUntil(() => reloads().length > before, 10_000, 'reload with the shorter overlap')
    await waitUntil(() => heldClosed, 15_000, 'the old-key connection closed at the end of the overlap')
    // The close reaches the client before the gateway's log line reaches this process: wait for both.
    await waitUntil(() => logs.some((l) => l.event === 'psk_retired'), 10_000, 'the psk_retired event')
    const retired = logs.find((l) => l.event === 'psk_retired')
    expect(retired).toMatchObject({ security: true, device: 'dev', pskIdentity: 'dev', clientId: 'dev-held' })
    // pino's time: ms since the epoch, on the same clock as `until`.
    expect(retired!.time as number).toBeGreaterThanOrEqual(until)
    ;(held.socket as TLSSocket).destroy()
  }, 60_000)

  it('after the overlap: only the new key works; the old one is refused as a retired identity of the device', async () => {
    expect((await pub(newIdentity, newKeyHex, 'after-new')).code).toBe(0)
    const old = await pub('dev', OLD_KEY, 'after-old')
    expect(old.code).not.toBe(0)
    await waitUntil(
      () => logs.some((l) => l.event === 'psk_retired_identity'),
      10_000,
      'the refusal of the old identity',
    )
    expect(logs.find((l) => l.event === 'psk_retired_identity')).toMatchObject({
      security: true,
      device: 'dev',
      pskIdentity: 'dev',
      listener: 'psk',
    })
    expect(JSON.stringify(logs)).not.toContain(OLD_KEY)
    expect(JSON.stringify(logs)).not.toContain(newKeyHex)
  }, 30_000)
})

describe('the identity after a rotation', () => {
  it('numbers rotations: dev -> dev-r2 -> dev-r3; a name that only looks numbered past 9 digits gets -r2', () => {
    expect(['dev', 'dev-r2', 'dev-r9', 'boiler-1', 'a-r1234567890'].map(nextPskIdentity)).toEqual([
      'dev-r2',
      'dev-r3',
      'dev-r10',
      'boiler-1-r2',
      'a-r1234567890-r2',
    ])
  })
})
