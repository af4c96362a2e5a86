import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import type { ConfigInput } from '../../config/index.js'
import { deriveContext } from '../../crypto/context.js'
import { makeToken } from '../../crypto/token.js'
import { Alg } from '../../crypto/types.js'
import { writeSecretFile } from '../../pki/index.js'
import { MosquittoSub } from '../helpers/mosquitto-sub.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { connackCode, connectDevice, publishOutcome } from '../integration/clients.js'
import { CLOUD_PREFIX, Stack } from '../integration/harness.js'
import { runCli } from './run-cli.js'

type DeviceEntry = NonNullable<ConfigInput['devices']>[number]

/**
 * Onboarding a one-time-token device the documented way: the entry printed by
 * `device add --sealed` goes into the config unchanged, and the device connects
 * with the CONNECT fields docs/wire-format.md names (username = the entry's
 * username, client id = the device id, password = a token).
 */
describe('token device onboarding', () => {
  let dir: string
  let stack: Stack
  let sub: MosquittoSub
  let added: DeviceEntry
  let firmwareSecret: Buffer

  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-onboard-')
    const keyDir = join(dir, 'keys')
    const result = await runCli(['device', 'add', 'tiny', '--sealed', '--kid', '7c', '--key-dir', keyDir])
    expect(result.code, result.stderr).toBe(0)
    added = (parse(result.stdout) as DeviceEntry[])[0]!
    // What the firmware gets: the secret printed once on stderr.
    const printed = /master secret: {2}([0-9a-f]{32})/.exec(result.stderr)
    expect(printed, result.stderr).not.toBeNull()
    firmwareSecret = Buffer.from(printed![1]!, 'hex')
    expect(result.stderr).toContain('CONNECT:        username `tiny`, client id `tiny`')
    await writeSecretFile(join(dir, 'tiny-2.secret'), `${'5a'.repeat(16)}\n`)
    stack = await Stack.start({
      devices: [
        added,
        // A hand-written entry without `username`: a token device answers to its id.
        { id: 'tiny-2', payloadKey: { kid: '7d', secretFile: join(dir, 'tiny-2.secret') } },
      ],
      protection: [{ topic: 'devices/+/sealed/#', mode: 'sealed' }],
    })
    sub = await MosquittoSub.start({ ...stack.cloudClient(), topic: `${CLOUD_PREFIX}#`, qos: 1 })
    await stack.waitLinkUp()
  }, 60_000)

  afterAll(async () => {
    await sub?.stop()
    await stack?.stop()
    await removeDir(dir)
  })

  it('device add --sealed prints an entry that names the CONNECT username', () => {
    expect(added).toEqual({
      id: 'tiny',
      username: 'tiny',
      payloadKey: { kid: '7c', secretFile: join(dir, 'keys', 'tiny.secret'), aead: 'AES-CCM-16-64-128' },
    })
  })

  it('the entry, unchanged, connects with `device simulate --mode sealed`', async () => {
    const before = sub.messages.length
    const result = await runCli([
      'device',
      'simulate',
      '-c',
      stack.configFile,
      '--mode',
      'sealed',
      '--devices',
      'tiny',
      '--port',
      String(stack.port('tcp')),
      '--messages',
      '3',
      '--interval',
      '10',
      '--topic',
      'devices/%d/sealed/t',
      '--state-dir',
      join(dir, 'sim-state'),
    ])
    expect(result.stderr).toBe('')
    expect(result.stdout).toBe('tiny: sent 3, acknowledged 3\n')
    expect(result.code).toBe(0)
    await sub.waitFor(before + 3)
    expect(sub.messages.slice(before).map((m) => m.topic)).toEqual(
      Array(3).fill(`${CLOUD_PREFIX}tiny/sealed/t`),
    )
  })

  /** A token built from the firmware's secret, as a device maker would from the docs. */
  const tokenFor = (secret: Buffer, kid: string, clientId: string, now = Math.floor(Date.now() / 1000)) =>
    makeToken(
      deriveContext({ masterSecret: secret, kid: Buffer.from(kid, 'hex'), aead: Alg.AES_CCM_16_64_128 }),
      clientId,
      now,
    )

  it('a hand-built token with the documented CONNECT fields connects and publishes', async () => {
    const client = await connectDevice(stack.port('tcp'), {
      clientId: 'tiny',
      username: 'tiny',
      password: tokenFor(firmwareSecret, '7c', 'tiny'),
    })
    expect(await publishOutcome(client, 'devices/tiny/plain', 'hello')).toBe('acked')
    await client.endAsync()
  })

  it('a token device without `username` in its entry answers to its device id', async () => {
    const secret = Buffer.from((await readFile(join(dir, 'tiny-2.secret'), 'utf8')).trim(), 'hex')
    expect(
      await connackCode(stack.port('tcp'), {
        clientId: 'tiny-2',
        username: 'tiny-2',
        password: tokenFor(secret, '7d', 'tiny-2'),
      }),
    ).toBe(0)
  })

  it('each wrong CONNECT field gets the documented CONNACK code and security event', async () => {
    const port = stack.port('tcp')
    const cases: Array<[string, Parameters<typeof connackCode>[1], number, string]> = [
      ['username = the kid', { clientId: 'tiny', username: '7c' }, 4, 'auth_unknown_user'],
      ['username of another device', { clientId: 'tiny', username: 'tiny-2' }, 4, 'auth_bad_token'],
      ['client id not in the token', { clientId: 'tiny-x', username: 'tiny' }, 4, 'auth_bad_token'],
    ]
    for (const [name, options, code, event] of cases) {
      const before = stack.logs.events(event).length
      const password = tokenFor(firmwareSecret, '7c', 'tiny')
      expect(await connackCode(port, { ...options, password }), name).toBe(code)
      expect(stack.logs.events(event).length, name).toBe(before + 1)
    }
    // The same token twice: the second CONNECT is refused as a replay.
    const token = tokenFor(firmwareSecret, '7c', 'tiny')
    expect(await connackCode(port, { clientId: 'tiny', username: 'tiny', password: token })).toBe(0)
    const replays = stack.logs.events('auth_bad_token').length
    expect(await connackCode(port, { clientId: 'tiny', username: 'tiny', password: token })).toBe(4)
    expect(stack.logs.events('auth_bad_token').slice(replays)).toEqual([
      expect.objectContaining({ device: 'tiny', msg: 'CONNECT refused: one-time token refused (replayed)' }),
    ])
  })
})
