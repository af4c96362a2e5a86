import { beforeAll, describe, expect, it } from 'vitest'
import { hashPassword } from '../../../gateway/auth/password.js'
import { passwordVerifier } from '../../../gateway/auth/password-verifier.js'
import type { TransportContext } from '../../../gateway/connection-context.js'
import { decide } from '../../../gateway/hooks/authenticate.js'
import { DeviceRegistry } from '../../../gateway/registry.js'

const FAST = { ln: 10, r: 8, p: 1 }
const PASSWORD_A = 'password of device a'
const PASSWORD_B = 'password of device b'

const plain: TransportContext = { listener: 'tcp', remoteAddress: '192.0.2.10' }
const pskOf = (identity: string): TransportContext => ({
  listener: 'tls-psk',
  remoteAddress: '192.0.2.11',
  pskIdentity: identity,
})
const certificateOf = (commonName: string): TransportContext => ({
  listener: 'tls',
  remoteAddress: '192.0.2.12',
  certificateCommonName: commonName,
})
const pw = (s: string) => Buffer.from(s, 'utf8')

let registry: DeviceRegistry

beforeAll(async () => {
  const [hashA, hashB] = await Promise.all([hashPassword(PASSWORD_A, FAST), hashPassword(PASSWORD_B, FAST)])
  registry = new DeviceRegistry([
    {
      id: 'dev-a',
      username: 'user-a',
      password: passwordVerifier(hashA),
      psk: { identity: 'psk-a', key: Buffer.alloc(16, 0xa) },
    },
    {
      id: 'dev-b',
      username: 'user-b',
      password: passwordVerifier(hashB),
      psk: { identity: 'psk-b', key: Buffer.alloc(16, 0xb) },
    },
    // A PSK device that also has a username but no password.
    { id: 'dev-c', username: 'user-c', psk: { identity: 'psk-c', key: Buffer.alloc(16, 0xc) } },
    // A password device allowed a family of client ids.
    { id: 'dev-d', username: 'user-d', password: passwordVerifier(hashA), clientIds: ['sensor-*', 'dev-d'] },
    // A certificate device.
    { id: 'dev-e', username: 'user-e', certificateCommonName: 'dev-e.example' },
  ])
})

describe('decide: accepted', () => {
  it('accepts a PSK alone', async () => {
    const verdict = await decide(registry, pskOf('psk-a'), 'dev-a', undefined, undefined)
    expect(verdict).toEqual({ ok: true, device: registry.byDeviceId('dev-a') })
    expect(verdict.ok && verdict.device.id).toBe('dev-a')
  })

  it("accepts a PSK with the same device's username, with or without its password", async () => {
    const bare = await decide(registry, pskOf('psk-a'), 'dev-a', 'user-a', undefined)
    expect(bare).toEqual({ ok: true, device: registry.byDeviceId('dev-a') })
    const withPassword = await decide(registry, pskOf('psk-a'), 'dev-a', 'user-a', pw(PASSWORD_A))
    expect(withPassword).toEqual({ ok: true, device: registry.byDeviceId('dev-a') })
  })

  it('accepts the right username and password on a plain listener', async () => {
    const verdict = await decide(registry, plain, 'dev-b', 'user-b', pw(PASSWORD_B))
    expect(verdict).toEqual({ ok: true, device: registry.byDeviceId('dev-b') })
  })

  it("accepts any client id matching the device's patterns", async () => {
    for (const clientId of ['dev-d', 'sensor-1', 'sensor-kitchen']) {
      const verdict = await decide(registry, plain, clientId, 'user-d', pw(PASSWORD_A))
      expect(verdict, clientId).toEqual({ ok: true, device: registry.byDeviceId('dev-d') })
    }
  })
})

describe('decide: refused', () => {
  it("refuses a PSK of one device with another device's username (5, auth_identity_mismatch)", async () => {
    const expected = {
      ok: false,
      returnCode: 5,
      event: 'auth_identity_mismatch',
      message: 'transport identity of device dev-a used with the username of device dev-b',
      device: 'dev-a',
    }
    expect(await decide(registry, pskOf('psk-a'), 'dev-a', 'user-b', undefined)).toEqual(expected)
    // Knowing the other device's password does not help.
    expect(await decide(registry, pskOf('psk-a'), 'dev-a', 'user-b', pw(PASSWORD_B))).toEqual(expected)
    expect(await decide(registry, pskOf('psk-a'), 'dev-b', 'user-b', pw(PASSWORD_B))).toEqual(expected)
  })

  it('refuses a PSK with a username that names no device (5, auth_identity_mismatch)', async () => {
    expect(await decide(registry, pskOf('psk-a'), 'dev-a', 'nobody', pw('x'))).toEqual({
      ok: false,
      returnCode: 5,
      event: 'auth_identity_mismatch',
      message: 'username names no device',
      device: 'dev-a',
    })
  })

  it("refuses a PSK with the same device's username and a wrong password (4, auth_bad_password)", async () => {
    expect(await decide(registry, pskOf('psk-a'), 'dev-a', 'user-a', pw(PASSWORD_B))).toEqual({
      ok: false,
      returnCode: 4,
      event: 'auth_bad_password',
      message: 'wrong password',
      device: 'dev-a',
    })
  })

  it('refuses a wrong password (4, auth_bad_password)', async () => {
    const expected = {
      ok: false,
      returnCode: 4,
      event: 'auth_bad_password',
      message: 'wrong password',
      device: 'dev-b',
    }
    expect(await decide(registry, plain, 'dev-b', 'user-b', pw(PASSWORD_A))).toEqual(expected)
    expect(await decide(registry, plain, 'dev-b', 'user-b', pw(`${PASSWORD_B} `))).toEqual(expected)
    expect(await decide(registry, plain, 'dev-b', 'user-b', Buffer.alloc(0))).toEqual(expected)
    expect(await decide(registry, plain, 'dev-b', 'user-b', Buffer.alloc(2000, 0x61))).toEqual(expected)
  })

  it('refuses a password for a username whose device has no password hash (4, auth_bad_password)', async () => {
    expect(await decide(registry, plain, 'dev-c', 'user-c', pw('anything'))).toEqual({
      ok: false,
      returnCode: 4,
      event: 'auth_bad_password',
      message: 'wrong password',
      device: 'dev-c',
    })
  })

  it('refuses an unknown username (4, auth_unknown_user), without naming a device', async () => {
    const expected = { ok: false, returnCode: 4, event: 'auth_unknown_user', message: 'unknown username' }
    expect(await decide(registry, plain, 'dev-a', 'nobody', pw(PASSWORD_A))).toEqual(expected)
    expect(await decide(registry, plain, 'dev-a', 'nobody', undefined)).toEqual(expected)
    // Device ids are not usernames.
    expect(await decide(registry, plain, 'dev-a', 'dev-a', pw(PASSWORD_A))).toEqual(expected)
  })

  it('refuses a username without a password on a plain listener (4, auth_missing_credentials)', async () => {
    expect(await decide(registry, plain, 'dev-a', 'user-a', undefined)).toEqual({
      ok: false,
      returnCode: 4,
      event: 'auth_missing_credentials',
      message: 'username without password',
      device: 'dev-a',
    })
    // A username alone is not enough for a PSK device either, when it arrives without its PSK.
    expect(await decide(registry, plain, 'dev-c', 'user-c', undefined)).toEqual({
      ok: false,
      returnCode: 4,
      event: 'auth_missing_credentials',
      message: 'username without password',
      device: 'dev-c',
    })
  })

  it('refuses a client presenting nothing (5, auth_missing_credentials)', async () => {
    const expected = {
      ok: false,
      returnCode: 5,
      event: 'auth_missing_credentials',
      message: 'no credentials presented',
    }
    expect(await decide(registry, plain, 'dev-a', undefined, undefined)).toEqual(expected)
    // A password without a username proves nothing.
    expect(await decide(registry, plain, 'dev-a', undefined, pw(PASSWORD_A))).toEqual(expected)
    // Nor does a PSK identity the registry does not know.
    expect(await decide(registry, pskOf('psk-unknown'), 'dev-a', undefined, undefined)).toEqual(expected)
  })

  it('refuses a client id the device may not use (2, client_id_refused)', async () => {
    const refused = (device: string) => ({
      ok: false,
      returnCode: 2,
      event: 'client_id_refused',
      message: 'client id not allowed for this device',
      device,
    })
    expect(await decide(registry, pskOf('psk-a'), 'dev-b', undefined, undefined)).toEqual(refused('dev-a'))
    expect(await decide(registry, pskOf('psk-a'), 'dev-a-2', undefined, undefined)).toEqual(refused('dev-a'))
    expect(await decide(registry, pskOf('psk-a'), '', undefined, undefined)).toEqual(refused('dev-a'))
    expect(await decide(registry, plain, 'dev-a', 'user-b', pw(PASSWORD_B))).toEqual(refused('dev-b'))
    expect(await decide(registry, plain, 'sensor', 'user-d', pw(PASSWORD_A))).toEqual(refused('dev-d'))
  })

  it("refuses a client id with '/', '+', '#' or a control character even when a pattern matches it (2)", async () => {
    for (const clientId of ['sensor-/x', 'sensor-+', 'sensor-#', 'sensor-\u0000', 'sensor-\u007f']) {
      expect(await decide(registry, plain, clientId, 'user-d', pw(PASSWORD_A)), clientId).toEqual({
        ok: false,
        returnCode: 2,
        event: 'client_id_refused',
        message: 'client id not allowed for this device',
        device: 'dev-d',
      })
    }
  })

  it('refuses a client id over 128 characters even when a pattern matches it (2)', async () => {
    const verdict = await decide(registry, plain, `sensor-${'x'.repeat(122)}`, 'user-d', pw(PASSWORD_A))
    expect(verdict).toMatchObject({ ok: false, returnCode: 2, event: 'client_id_refused' })
    const atLimit = await decide(registry, plain, `sensor-${'x'.repeat(121)}`, 'user-d', pw(PASSWORD_A))
    expect(atLimit).toEqual({ ok: true, device: registry.byDeviceId('dev-d') })
  })

  it('never puts the password in a verdict', async () => {
    const secret = 'a-very-secret-password'
    const verdicts = await Promise.all([
      decide(registry, plain, 'dev-a', 'user-a', pw(secret)),
      decide(registry, plain, 'dev-a', 'nobody', pw(secret)),
      decide(registry, pskOf('psk-a'), 'dev-a', 'user-b', pw(secret)),
    ])
    for (const verdict of verdicts) {
      expect(verdict.ok).toBe(false)
      expect(JSON.stringify(verdict)).not.toContain(secret)
    }
  })
})

describe('decide: certificate identity', () => {
  it("accepts a known certificate alone, or with the same device's username", async () => {
    const device = registry.byDeviceId('dev-e')
    expect(await decide(registry, certificateOf('dev-e.example'), 'dev-e', undefined, undefined)).toEqual({
      ok: true,
      device,
    })
    expect(await decide(registry, certificateOf('dev-e.example'), 'dev-e', 'user-e', undefined)).toEqual({
      ok: true,
      device,
    })
  })

  it('refuses a certificate that names no device (5, auth_unknown_certificate), even with a valid password', async () => {
    const expected = {
      ok: false,
      returnCode: 5,
      event: 'auth_unknown_certificate',
      message: 'certificate names no device',
    }
    expect(await decide(registry, certificateOf('stranger.example'), 'dev-a', undefined, undefined)).toEqual(
      expected,
    )
    expect(
      await decide(registry, certificateOf('stranger.example'), 'dev-a', 'user-a', pw(PASSWORD_A)),
    ).toEqual(expected)
    // A PSK identity is not a certificate name.
    expect(await decide(registry, certificateOf('psk-a'), 'dev-a', undefined, undefined)).toEqual(expected)
  })

  it("refuses a certificate of one device with another device's username (5, auth_identity_mismatch)", async () => {
    expect(await decide(registry, certificateOf('dev-e.example'), 'dev-e', 'user-a', pw(PASSWORD_A))).toEqual(
      {
        ok: false,
        returnCode: 5,
        event: 'auth_identity_mismatch',
        message: 'transport identity of device dev-e used with the username of device dev-a',
        device: 'dev-e',
      },
    )
  })
})

describe('decide: empty client id', () => {
  it('refuses an empty client id with a persistent session (2, client_id_refused), before anything else', async () => {
    const expected = {
      ok: false,
      returnCode: 2,
      event: 'client_id_refused',
      message: 'empty client id with a persistent session (MQTT-3.1.3-8)',
    }
    const persistent = { emptyClientId: true, clean: false }
    expect(await decide(registry, pskOf('psk-a'), 'aedes_x1', undefined, undefined, persistent)).toEqual(
      expected,
    )
    expect(await decide(registry, plain, 'aedes_x1', 'nobody', undefined, persistent)).toEqual(expected)
  })

  it('accepts an empty client id with a clean session, whatever id the broker assigned', async () => {
    const clean = { emptyClientId: true, clean: true }
    expect(await decide(registry, pskOf('psk-a'), 'aedes_x1', undefined, undefined, clean)).toEqual({
      ok: true,
      device: registry.byDeviceId('dev-a'),
    })
    // Credentials are still checked.
    expect(await decide(registry, plain, 'aedes_x1', 'user-a', pw(PASSWORD_B), clean)).toMatchObject({
      ok: false,
      returnCode: 4,
      event: 'auth_bad_password',
    })
    expect(await decide(registry, plain, 'aedes_x1', undefined, undefined, clean)).toMatchObject({
      ok: false,
      returnCode: 5,
      event: 'auth_missing_credentials',
    })
  })

  it('checks a non-empty client id against the device as before, with a persistent session too', async () => {
    const persistent = { emptyClientId: false, clean: false }
    expect(await decide(registry, pskOf('psk-a'), 'dev-a', undefined, undefined, persistent)).toEqual({
      ok: true,
      device: registry.byDeviceId('dev-a'),
    })
    expect(await decide(registry, pskOf('psk-a'), 'dev-b', undefined, undefined, persistent)).toMatchObject({
      ok: false,
      returnCode: 2,
      event: 'client_id_refused',
    })
  })
})
