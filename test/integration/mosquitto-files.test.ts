import { chmod, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mosquittoPub } from '../helpers/mosquitto-clients.js'
import { mosquittoPasswd } from '../helpers/mosquitto-passwd.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { connackCode, connectDevice, publishOutcome, subscribeGranted } from './clients.js'
import { Stack } from './harness.js'

/** The gateway run directly on Mosquitto's files, as an operator migrating from a Mosquitto bridge would. */
describe("Mosquitto's password_file, psk_file and acl_file used as they are", () => {
  let dir: string
  let stack: Stack

  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-mosq-files-')
    const passwordFile = join(dir, 'passwd')
    // The real tool: $7$ (PBKDF2-SHA512) by default, $6$ (SHA-512) with -H sha512.
    await mosquittoPasswd(['-c', '-b', passwordFile, 'alice', 'alice-secret'])
    await mosquittoPasswd(['-H', 'sha512', '-b', passwordFile, 'bob', 'bob-secret'])
    await chmod(passwordFile, 0o600)
    const pskFile = join(dir, 'psk')
    await writeFile(pskFile, 'sensor-9:00112233445566778899aabbccddeeff\n', { mode: 0o600 })
    const aclFile = join(dir, 'acl')
    await writeFile(
      aclFile,
      [
        '# clients without a username may read the public tree',
        'topic read public/#',
        'user alice',
        'topic readwrite home/alice/#',
        'topic deny home/alice/locked',
        'user bob',
        'topic write home/bob/#',
        'pattern readwrite clients/%c/#',
        'pattern bogus clients/%u',
        '',
      ].join('\n'),
    )
    stack = await Stack.start({ mosquitto: { passwordFile, pskFile, aclFile } })
  })

  afterAll(async () => {
    await stack?.stop()
    await removeDir(dir)
  })

  it('a password_file made by mosquitto_passwd authenticates ($7$ and $6$), and a wrong password does not', async () => {
    expect(
      await connackCode(stack.port('tcp'), { username: 'alice', password: 'alice-secret', clientId: 'a1' }),
    ).toBe(0)
    expect(
      await connackCode(stack.port('tcp'), { username: 'bob', password: 'bob-secret', clientId: 'b1' }),
    ).toBe(0)
    expect(
      await connackCode(stack.port('tcp'), { username: 'alice', password: 'bob-secret', clientId: 'a2' }),
    ).toBe(4)
  })

  it('a psk_file identity connects over TLS-PSK with mosquitto_pub', async () => {
    const result = await mosquittoPub({
      host: '127.0.0.1',
      port: stack.port('tls-psk'),
      psk: { identity: 'sensor-9', keyHex: '00112233445566778899aabbccddeeff' },
      clientId: 'sensor-9',
      topic: 'clients/sensor-9/reading',
      message: '42',
      qos: 1,
    })
    expect(result).toMatchObject({ code: 0 })
  })

  it('the acl_file decides: user topics, deny lines and %c patterns', async () => {
    const alice = await connectDevice(stack.port('tcp'), {
      username: 'alice',
      password: 'alice-secret',
      clientId: 'alice-1',
    })
    expect(await publishOutcome(alice, 'home/alice/kitchen', '21')).toBe('acked')
    expect(
      await subscribeGranted(alice, { 'home/alice/kitchen': { qos: 1 }, 'home/bob/#': { qos: 1 } }),
    ).toEqual([1, 128])
    expect(await publishOutcome(alice, 'clients/alice-1/status', 'up')).toBe('acked')
    expect(await publishOutcome(alice, 'home/alice/locked', 'x')).toBe('closed')
    const bob = await connectDevice(stack.port('tcp'), {
      username: 'bob',
      password: 'bob-secret',
      clientId: 'bob-1',
    })
    expect(await subscribeGranted(bob, { 'home/bob/door': { qos: 0 } })).toEqual([128])
    expect(await publishOutcome(bob, 'home/bob/door', 'open')).toBe('acked')
    await bob.endAsync()
  })

  it('lines that could not be used are reported with their line numbers', () => {
    const warning = stack.logs.records.find((r) => r.module === 'policies' && String(r.msg).includes(':9:'))
    expect(warning?.msg).toMatch(/acl:9: .*bogus/)
  })
})
