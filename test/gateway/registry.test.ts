import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { GatewayError } from '../../gateway/errors.js'
import { DeviceRegistry, readPskFile } from '../../gateway/registry.js'
import { rejectionOf } from '../helpers/catch.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'

const KEY_HEX = '1f2e3d4c5b6a79880716253443526170'

let dir: string
let counter = 0

beforeAll(async () => {
  dir = await makeTempDir('edge-gateway-registry-test-')
})

afterAll(async () => {
  await removeDir(dir)
})

/** Writes `content` to a fresh key file, mode 0600, and returns its path. */
async function keyFile(content: string | Buffer): Promise<string> {
  const file = join(dir, `key-${++counter}.hex`)
  await writeFile(file, content, { mode: 0o600 })
  return file
}

/** Asserts readPskFile refuses the file with GW_ERR_BAD_PSK_FILE, quoting the path and size only. */
async function expectRefused(content: string | Buffer): Promise<GatewayError> {
  const file = await keyFile(content)
  const err = await rejectionOf(readPskFile(file))
  expect(err).toBeInstanceOf(GatewayError)
  expect(err).toMatchObject({
    name: 'GatewayError',
    code: 'GW_ERR_BAD_PSK_FILE',
    message: `${file}: expected a PSK as 32 to 128 hex digits (16 to 64 bytes), got ${Buffer.byteLength(content)} bytes of something else`,
  })
  return err as GatewayError
}

describe('readPskFile', () => {
  it('reads 16 bytes of hex followed by a newline', async () => {
    const key = await readPskFile(await keyFile(`${KEY_HEX}\n`))
    expect(key).toEqual(Buffer.from(KEY_HEX, 'hex'))
    expect(key).toHaveLength(16)
  })

  it('ignores surrounding white space and CRLF, and reads upper-case hex', async () => {
    const key = await readPskFile(await keyFile(`  \t${KEY_HEX.toUpperCase()}\r\n\n`))
    expect(key).toEqual(Buffer.from(KEY_HEX, 'hex'))
  })

  it('reads the largest key, 64 bytes', async () => {
    const hex = 'ab'.repeat(64)
    expect(await readPskFile(await keyFile(hex))).toEqual(Buffer.alloc(64, 0xab))
  })

  it('accepts a file of exactly 1 KiB', async () => {
    const content = `${KEY_HEX}${' '.repeat(1024 - KEY_HEX.length - 1)}\n`
    expect(Buffer.byteLength(content)).toBe(1024)
    expect(await readPskFile(await keyFile(content))).toEqual(Buffer.from(KEY_HEX, 'hex'))
  })

  it('refuses a key shorter than 16 bytes', async () => {
    await expectRefused(`${KEY_HEX.slice(0, 30)}\n`)
    await expectRefused('')
    await expectRefused('\n')
  })

  it('refuses a key longer than 64 bytes', async () => {
    await expectRefused(`${'ab'.repeat(65)}\n`)
  })

  it('refuses an odd number of hex digits', async () => {
    await expectRefused(`${KEY_HEX}a\n`)
  })

  it('refuses what is not hex', async () => {
    await expectRefused(`${KEY_HEX.slice(0, 30)}zz\n`)
    await expectRefused(`0x${KEY_HEX}\n`)
    await expectRefused(`${KEY_HEX.slice(0, 16)} ${KEY_HEX.slice(16)}\n`)
    await expectRefused(`${Buffer.from(KEY_HEX, 'hex').toString('base64')}\n`)
    await expectRefused(Buffer.from(KEY_HEX, 'hex'))
    await expectRefused(`psk-a:${KEY_HEX}\n`)
  })

  it('refuses a file over 1 KiB, even when it holds a valid key', async () => {
    await expectRefused(`${KEY_HEX}${'\n'.repeat(1024 - KEY_HEX.length + 1)}`)
    await expectRefused(`${KEY_HEX}\n${' '.repeat(100_000)}`)
  })

  it('never quotes the file content in its error', async () => {
    const err = await expectRefused(`${KEY_HEX}zz\n`)
    expect(err.message).not.toContain(KEY_HEX)
  })

  it('passes on the error of a missing file', async () => {
    const err = await rejectionOf(readPskFile(join(dir, 'missing.hex')))
    expect(err).toMatchObject({ code: 'ENOENT' })
  })
})

describe('DeviceRegistry', () => {
  const key = Buffer.from(KEY_HEX, 'hex')
  const verifier = async (password: Buffer) => password.equals(Buffer.from('pw'))

  it('indexes a device by id, username, PSK identity and certificate name', () => {
    const registry = new DeviceRegistry([
      {
        id: 'dev-a',
        username: 'user-a',
        password: verifier,
        psk: { identity: 'psk-a', key },
        certificateCommonName: 'dev-a.example',
        groups: ['sensors'],
      },
    ])
    const device = registry.byDeviceId('dev-a')
    expect(device).toMatchObject({
      id: 'dev-a',
      username: 'user-a',
      password: verifier,
      pskIdentity: 'psk-a',
      certificateCommonName: 'dev-a.example',
      groups: ['sensors'],
    })
    expect(registry.size).toBe(1)
    expect(registry.byUser('user-a')).toBe(device)
    expect(registry.byPsk('psk-a')).toBe(device)
    expect(registry.byCertificate('dev-a.example')).toBe(device)
    expect([...registry.devices()]).toEqual([device])
  })

  it('keeps the PSK key out of the device record', () => {
    const registry = new DeviceRegistry([{ id: 'dev-a', psk: { identity: 'psk-a', key } }])
    expect(registry.pskKey('psk-a')).toEqual(key)
    const device = registry.byDeviceId('dev-a')!
    expect(Object.values(device)).not.toContain(key)
    expect(JSON.stringify(device)).not.toContain(KEY_HEX)
    expect(JSON.stringify(device)).not.toContain(JSON.stringify(key.toJSON().data))
  })

  it('a PSK being replaced: both identities find the device until the overlap ends, then only the new one', () => {
    const oldKey = Buffer.alloc(16, 7)
    const until = 1_000_000
    const registry = new DeviceRegistry([
      {
        id: 'dev-a',
        psk: { identity: 'psk-a-r2', key, previous: { identity: 'psk-a', key: oldKey, until } },
      },
    ])
    const device = registry.byDeviceId('dev-a')!
    expect(device.pskIdentity).toBe('psk-a-r2')
    for (const now of [0, until - 1]) {
      expect([registry.byPsk('psk-a', now), registry.pskKey('psk-a', now)]).toEqual([device, oldKey])
      expect([registry.byPsk('psk-a-r2', now), registry.pskKey('psk-a-r2', now)]).toEqual([device, key])
      expect(registry.pskRetired('psk-a', now)).toBe(false)
    }
    for (const now of [until, until + 1]) {
      expect([registry.byPsk('psk-a', now), registry.pskKey('psk-a', now)]).toEqual([undefined, undefined])
      expect(registry.pskRetired('psk-a', now)).toBe(true)
      expect(registry.pskOwner('psk-a')).toBe(device)
      expect(registry.byPsk('psk-a-r2', now)).toBe(device)
    }
    expect([registry.nextPskRetirement(0), registry.nextPskRetirement(until)]).toEqual([until, undefined])
  })

  it('refuses two devices with one PSK identity, the replaced one included', () => {
    const other = { id: 'dev-b', psk: { identity: 'psk-a', key } }
    expect(() => new DeviceRegistry([{ id: 'dev-a', psk: { identity: 'psk-a', key } }, other])).toThrow(
      /devices dev-a and dev-b both use the PSK identity "psk-a"/,
    )
    const rotating = {
      id: 'dev-a',
      psk: { identity: 'psk-a-r2', key, previous: { identity: 'psk-a', key, until: 1 } },
    }
    expect(() => new DeviceRegistry([rotating, other])).toThrow(/both use the PSK identity "psk-a"/)
  })

  it('finds nothing under one identity by another kind of identity', () => {
    const registry = new DeviceRegistry([
      { id: 'dev-a', username: 'user-a', psk: { identity: 'psk-a', key }, certificateCommonName: 'cn-a' },
    ])
    expect(registry.byUser('dev-a')).toBeUndefined()
    expect(registry.byUser('psk-a')).toBeUndefined()
    expect(registry.byPsk('user-a')).toBeUndefined()
    expect(registry.byPsk('dev-a')).toBeUndefined()
    expect(registry.byCertificate('dev-a')).toBeUndefined()
    expect(registry.byDeviceId('user-a')).toBeUndefined()
    expect(registry.pskKey('psk-b')).toBeUndefined()
    expect(registry.pskKey('user-a')).toBeUndefined()
  })

  it('gives a device without optional identities only an id, no groups and its id as client id', () => {
    const registry = new DeviceRegistry([{ id: 'dev-a' }])
    const device = registry.byDeviceId('dev-a')!
    expect(Object.keys(device).sort()).toEqual(['clientIdAllowed', 'groups', 'id'])
    expect(device.groups).toEqual([])
    expect(device.clientIdAllowed('dev-a')).toBe(true)
    expect(device.clientIdAllowed('dev-b')).toBe(false)
  })

  it('allows only the configured client ids when there are some', () => {
    const registry = new DeviceRegistry([{ id: 'dev-b', clientIds: ['b-*', 'exact'] }])
    const device = registry.byDeviceId('dev-b')!
    expect(device.clientIdAllowed('b-1')).toBe(true)
    expect(device.clientIdAllowed('exact')).toBe(true)
    expect(device.clientIdAllowed('dev-b')).toBe(false)
  })

  it('copies the groups, so changing the spec later changes nothing', () => {
    const groups = ['a']
    const registry = new DeviceRegistry([{ id: 'dev-a', groups }])
    groups.push('b')
    expect(registry.byDeviceId('dev-a')!.groups).toEqual(['a'])
  })

  it('names a token device (payload key, no username) by its id as the CONNECT username', () => {
    const payload = { kid: Buffer.from([1]), context: {} as never }
    const registry = new DeviceRegistry([
      { id: 'tiny', payload },
      { id: 'meter', username: 'meter-user', payload: { ...payload, kid: Buffer.from([2]) } },
    ])
    expect(registry.byUser('tiny')?.id).toBe('tiny')
    expect(registry.byUser('meter-user')?.id).toBe('meter')
    expect(registry.byUser('meter')).toBeUndefined()
    expect(registry.byDeviceId('tiny')?.username).toBeUndefined()
  })

  it('refuses two devices that answer to one CONNECT username', () => {
    const payload = { kid: Buffer.from([1]), context: {} as never }
    expect(
      () =>
        new DeviceRegistry([
          { id: 'tiny', payload },
          { id: 'other', username: 'tiny' },
        ]),
    ).toThrow(
      expect.objectContaining({
        code: 'GW_ERR_DUPLICATE_USERNAME',
        message: 'devices tiny and other both answer to the CONNECT username "tiny"',
      }),
    )
  })

  it('is empty when built from nothing', () => {
    const registry = new DeviceRegistry()
    expect(registry.size).toBe(0)
    expect([...registry.devices()]).toEqual([])
    expect(registry.byDeviceId('')).toBeUndefined()
  })
})
