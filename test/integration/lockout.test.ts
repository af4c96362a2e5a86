import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connackCode, rawConnack, sleep } from './clients.js'
import { PASSWORD_DEVICE, Stack } from './harness.js'

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
