import type { MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectDevice, subscribeGranted } from './clients.js'
import { PASSWORD_DEVICE, Stack } from './harness.js'

/** `lan.maxSubscriptionsPerClient` (1,000 by default): the next filter is refused at SUBACK. */
describe('subscriptions per client are limited', () => {
  let stack: Stack
  let client: MqttClient

  beforeAll(async () => {
    stack = await Stack.start()
    client = await connectDevice(stack.port('tcp'), {
      clientId: PASSWORD_DEVICE.id,
      username: PASSWORD_DEVICE.username,
      password: PASSWORD_DEVICE.password,
    })
  })

  afterAll(async () => {
    await client?.endAsync(true)
    await stack?.stop()
  })

  const filters = (from: number, count: number) =>
    Object.fromEntries(
      Array.from({ length: count }, (_, i) => [
        `devices/${PASSWORD_DEVICE.id}/t/${from + i}`,
        { qos: 1 as const },
      ]),
    )

  it('grants 1,000 filters (also in one SUBSCRIBE), refuses the 1,001st with 0x80 and reports it', async () => {
    // 999 in one packet, then one packet of two: the second of those is the 1,001st.
    const first = await subscribeGranted(client, filters(0, 999))
    expect(first).toEqual(Array(999).fill(1))
    expect(await subscribeGranted(client, filters(999, 2))).toEqual([1, 0x80])
    const [event] = stack.logs.events('subscription_limit')
    expect(event).toMatchObject({
      device: PASSWORD_DEVICE.id,
      topic: `devices/${PASSWORD_DEVICE.id}/t/1000`,
      maxSubscriptions: 1000,
    })
    expect(stack.gateway.metrics.get('security_events_total{event="subscription_limit"}')).toBe(1)
    // A filter the client holds already is no new subscription.
    expect(await subscribeGranted(client, filters(5, 1))).toEqual([1])
  })

  it('an UNSUBSCRIBE makes room for one more', async () => {
    await client.unsubscribeAsync(`devices/${PASSWORD_DEVICE.id}/t/0`)
    expect(await subscribeGranted(client, filters(2000, 2))).toEqual([1, 0x80])
  })

  it('the limit is per client: another connection of the same device has its own 1,000', async () => {
    const other = await connectDevice(stack.port('tcp'), {
      clientId: `${PASSWORD_DEVICE.id}-2`,
      username: PASSWORD_DEVICE.username,
      password: PASSWORD_DEVICE.password,
    })
    expect(await subscribeGranted(other, filters(0, 3))).toEqual([1, 1, 1])
    await other.endAsync()
  })
})
