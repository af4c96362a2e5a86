import { createRequire } from 'node:module'
import mqttPacket from 'mqtt-packet'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectDevice } from './clients.js'
import { PASSWORD_DEVICE, Stack } from './harness.js'

const require = createRequire(import.meta.url)
const numbers = require('mqtt-packet/numbers.js') as { cache: Record<number, Buffer> }

/** gateway/mqtt-codec.ts: the MQTT codec's 65,536-Buffer number cache is never built. */
describe('the MQTT codec without its number cache', () => {
  let stack: Stack

  beforeAll(async () => {
    stack = await Stack.start()
  })

  afterAll(async () => {
    await stack?.stop()
  })

  it('is off once the gateway runs, and stays empty while devices and the cloud link exchange packets', async () => {
    await stack.waitLinkUp()
    const client = await connectDevice(stack.port('tcp'), {
      clientId: PASSWORD_DEVICE.id,
      username: PASSWORD_DEVICE.username,
      password: PASSWORD_DEVICE.password,
    })
    for (let i = 0; i < 20; i++)
      await client.publishAsync(`devices/${PASSWORD_DEVICE.id}/t`, `m-${i}`, { qos: 1 })
    await client.endAsync()
    expect(mqttPacket.writeToStream.cacheNumbers).toBe(false)
    expect(Object.keys(numbers.cache)).toHaveLength(0)
    expect(stack.gateway.metrics.get('uplink_accepted_total')).toBe(20)
  })
})
