import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { deriveContext } from '../../crypto/context.js'
import { makeToken } from '../../crypto/token.js'
import { Alg } from '../../crypto/types.js'
import { writeSecretFile } from '../../pki/index.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { connackCode, pskConnack, rawConnack, sleep } from './clients.js'
import { PASSWORD_DEVICE, PSK_DEVICE, Stack } from './harness.js'

describe('lockout after repeated authentication failures', () => {
  let stack: Stack

  beforeAll(async () => {
    stack = await Stack.start({ lockout: { maxFailures: 3, windowSeconds: 60, lockSeconds: 2 } })
  })

  afterAll(async () => {
    await stack?.stop()
  })

  const attempt = (password: string) =>
    connackCode(stack.port('tcp'), {
      username: PASSWORD_DEVICE.username,
      password,
      clientId: PASSWORD_DEVICE.id,
    })

  it('after the configured failures a correct password is refused too, until the lock expires', async () => {
    expect(await attempt('wrong-1')).toBe(4)
    expect(await attempt('wrong-2')).toBe(4)
    expect(await attempt('wrong-3')).toBe(4)
    const locked = await stack.logs.waitFor((r) => r.event === 'auth_locked_out' && r.lockKey === 'identity')
    expect(locked).toMatchObject({ device: PASSWORD_DEVICE.id, remoteAddress: '127.0.0.1' })

    expect(await attempt(PASSWORD_DEVICE.password)).toBe(5)
    const refused = stack.logs.events('auth_locked_out').filter((r) => r.returnCode === 5)
    expect(refused.length).toBeGreaterThanOrEqual(1)

    await sleep(2300)
    expect(await attempt(PASSWORD_DEVICE.password)).toBe(0)
  })
})

describe('the lockout table stays bounded under a spray of random identities', () => {
  let stack: Stack

  beforeAll(async () => {
    // High enough that the spraying address itself is not locked: every attempt adds an identity.
    stack = await Stack.start({ lockout: { maxFailures: 1000, maxEntries: 100 } })
  })

  afterAll(async () => {
    await stack?.stop()
  })

  it('400 random usernames from 400 loopback addresses leave at most 100 entries', async () => {
    const port = stack.port('tcp')
    let refused = 0
    // 40 at a time: each refusal is answered lan.lockout.refusalDelayMs after it arrived.
    for (let batch = 0; batch < 10; batch++) {
      const codes = await Promise.all(
        Array.from({ length: 40 }, (_, j) => {
          const i = batch * 40 + j + 1
          // Each attempt from its own 127.1.x.y address, so no address is slowed and every identity is new.
          const from = `127.1.${i >> 8}.${i & 255}`
          return rawConnack(port, { clientId: `spray-${i}`, username: randomBytes(12).toString('hex') }, from)
        }),
      )
      refused += codes.filter((c) => c === 4).length
    }
    expect(refused).toBe(400)
    expect(stack.gateway.lan.access.lockout.size).toBeLessThanOrEqual(100)
    expect(stack.gateway.metrics.get('lan_lockout_entries')).toBeLessThanOrEqual(100)
    expect(stack.gateway.metrics.get('security_events_total{event="auth_unknown_user"}')).toBe(400)
  })
})

/** A CONNECT over TLS-PSK from `localAddress`; resolves with the CONNACK code, or 'handshake failed'. */
async function pskCode(port: number, identity: string, key: Buffer, clientId: string, localAddress: string) {
  const { code, socket } = await pskConnack(port, { identity, key }, clientId, localAddress)
  socket.destroy()
  return code === 'closed' ? 'handshake failed' : code
}

/**
 * Nobody can lock a device out that proves its key, or from another address
 * (docs/policies.md#lockout): each attack of the hardening review, through
 * real sockets from distinct loopback addresses.
 */
describe('failures from one source cannot deny service to a device', () => {
  let stack: Stack
  let dir: string
  const PSK_KEY = Buffer.from(PSK_DEVICE.keyHex, 'hex')
  const TOKEN_SECRET = Buffer.alloc(16, 0x5c)
  const token = () =>
    makeToken(
      deriveContext({ masterSecret: TOKEN_SECRET, kid: Buffer.from([0x42]), aead: Alg.AES_CCM_16_64_128 }),
      'tok',
      Math.floor(Date.now() / 1000),
    )

  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-lockout-')
    await writeSecretFile(join(dir, 'tok.secret'), TOKEN_SECRET.toString('hex'))
    stack = await Stack.start({
      lockout: { maxFailures: 5, windowSeconds: 60, lockSeconds: 60, maxEntries: 100 },
      devices: [{ id: 'tok', payloadKey: { kid: '42', secretFile: join(dir, 'tok.secret') } }],
    })
  })

  afterAll(async () => {
    await stack?.stop()
    await removeDir(dir)
  })

  it('six credential-less CONNECTs with the client id of a PSK device do not lock the PSK device out', async () => {
    const port = stack.port('tcp')
    for (let i = 0; i < 6; i++)
      expect(await rawConnack(port, { clientId: PSK_DEVICE.id }, '127.0.5.1')).toBe(5)
    expect(
      await pskCode(stack.port('tls-psk'), PSK_DEVICE.identity, PSK_KEY, PSK_DEVICE.id, '127.0.5.1'),
    ).toBe(0)
    expect(
      await pskCode(stack.port('tls-psk'), PSK_DEVICE.identity, PSK_KEY, PSK_DEVICE.id, '127.0.5.2'),
    ).toBe(0)
  })

  it('wrong passwords from another host do not lock out the real device', async () => {
    const port = stack.port('tcp')
    const as = (password: string, from: string) =>
      rawConnack(
        port,
        { clientId: PASSWORD_DEVICE.id, username: PASSWORD_DEVICE.username, password: Buffer.from(password) },
        from,
      )
    for (let i = 0; i < 6; i++) expect(await as(`wrong-${i}`, '127.0.6.66')).not.toBe(0)
    // The attacker's own address is locked, correct password or not.
    expect(await as(PASSWORD_DEVICE.password, '127.0.6.66')).toBe(5)
    // The device at its own address still gets in.
    expect(await as(PASSWORD_DEVICE.password, '127.0.6.1')).toBe(0)
  })

  it('an address locked by junk still lets a PSK device and a token device through; passwords wait', async () => {
    const port = stack.port('tcp')
    for (let i = 0; i < 6; i++) expect(await rawConnack(port, { clientId: `junk-${i}` }, '127.0.7.1')).toBe(5)
    expect(
      await pskCode(stack.port('tls-psk'), PSK_DEVICE.identity, PSK_KEY, PSK_DEVICE.id, '127.0.7.1'),
    ).toBe(0)
    expect(await rawConnack(port, { clientId: 'tok', username: 'tok', password: token() }, '127.0.7.1')).toBe(
      0,
    )
    // The trade-off against password guessing: password devices behind that address wait for the lock.
    expect(
      await rawConnack(
        port,
        {
          clientId: PASSWORD_DEVICE.id,
          username: PASSWORD_DEVICE.username,
          password: Buffer.from(PASSWORD_DEVICE.password),
        },
        '127.0.7.1',
      ),
    ).toBe(5)
  })

  it('a spray of junk from 400 addresses does not release the lock on a device attacker', async () => {
    const port = stack.port('tcp')
    const as = (password: string, from: string) =>
      rawConnack(
        port,
        { clientId: PASSWORD_DEVICE.id, username: PASSWORD_DEVICE.username, password: Buffer.from(password) },
        from,
      )
    for (let i = 0; i < 5; i++) await as(`wrong-${i}`, '127.0.8.66')
    expect(await as(PASSWORD_DEVICE.password, '127.0.8.66')).toBe(5)
    for (let batch = 0; batch < 10; batch++) {
      await Promise.all(
        Array.from({ length: 40 }, (_, j) => {
          const i = batch * 40 + j
          return rawConnack(
            port,
            { clientId: `spray-${i}`, username: randomBytes(8).toString('hex') },
            `127.9.${i >> 7}.${(i & 127) + 1}`,
          )
        }),
      )
    }
    expect(stack.gateway.lan.access.lockout.size).toBeLessThanOrEqual(300)
    expect(await as(PASSWORD_DEVICE.password, '127.0.8.66')).toBe(5)
  })
})
