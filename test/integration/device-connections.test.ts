/**
 * lan.maxConnectionsPerDevice: one device's credentials cannot take every connection (and file
 * descriptor) of the gateway: past the limit a CONNECT gets CONNACK 3 and is reported as
 * `connection_refused` (reason `device_connections`); a CONNECT that takes over one of its client
 * ids is not refused, and other devices are not affected. (A review opened 8,000 authenticated
 * connections with one device's password in 10 s.)
 */
import type { MqttClient } from 'mqtt'
import { afterEach, describe, expect, it } from 'vitest'
import { hashPassword } from '../../gateway/index.js'
import { connackCode, connectDevice } from './clients.js'
import { PASSWORD_DEVICE, Stack } from './harness.js'

const login = { username: PASSWORD_DEVICE.username, password: PASSWORD_DEVICE.password, reconnectPeriod: 0 }

describe('connections per device', () => {
  let stack: Stack | undefined
  const open: MqttClient[] = []
  afterEach(async () => {
    await Promise.all(open.splice(0).map((c) => c.endAsync(true).catch(() => undefined)))
    await stack?.stop()
    stack = undefined
  })

  it('refuses one past lan.maxConnectionsPerDevice with CONNACK 3; a takeover of its client id and other devices go through', async () => {
    const other = { id: 'other-dev', username: 'other-dev', password: 'another long password' }
    stack = await Stack.start({
      lan: { maxConnectionsPerDevice: 3 },
      devices: [{ id: other.id, username: other.username, passwordHash: await hashPassword(other.password) }],
    })
    const port = stack.port('tcp')
    for (let i = 0; i < 3; i++)
      open.push(await connectDevice(port, { ...login, clientId: `${PASSWORD_DEVICE.id}-${i}` }))
    expect(await connackCode(port, { ...login, clientId: `${PASSWORD_DEVICE.id}-3` })).toBe(3)
    const [event] = stack.logs.events('connection_refused')
    expect(event).toMatchObject({
      device: PASSWORD_DEVICE.id,
      clientId: `${PASSWORD_DEVICE.id}-3`,
      reason: 'device_connections',
      limit: 3,
    })
    // The same client id again takes its connection over: not one more.
    open.push(await connectDevice(port, { ...login, clientId: `${PASSWORD_DEVICE.id}-0` }))
    // Another device has its own count.
    open.push(await connectDevice(port, { ...other, clientId: other.id, reconnectPeriod: 0 }))
    // One closed (not the one taken over, which is closed already): room for one more.
    await open[1]!.endAsync()
    // The gateway sees the close a moment later: a bounded retry until it has.
    let code = -1
    for (let i = 0; i < 50 && code !== 0; i++) {
      code = await connackCode(port, { ...login, clientId: `${PASSWORD_DEVICE.id}-4` })
    }
    expect(code).toBe(0)
  })

  it('counts CONNECTs that arrive together: of 8 at once, 3 get in', async () => {
    stack = await Stack.start({ lan: { maxConnectionsPerDevice: 3 } })
    const port = stack.port('tcp')
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) =>
        connectDevice(port, { ...login, clientId: `${PASSWORD_DEVICE.id}-p${i}` }),
      ),
    )
    for (const r of results) if (r.status === 'fulfilled') open.push(r.value)
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3)
    const refused = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[]
    expect(refused.map((r) => (r.reason as { code?: number }).code)).toEqual([3, 3, 3, 3, 3])
  })
})
