import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PASSWORD_DEVICE, Stack, waitUntil } from './harness.js'

const BOUND = 5

describe('the in-memory uplink bound while the cloud is away', () => {
  let stack: Stack

  beforeAll(async () => {
    // One device fills the whole queue: no per-device share, so the bound itself shows.
    stack = await Stack.start({ cloud: { queue: { maxMessages: BOUND, deviceShare: 1 } } })
    await stack.waitLinkUp()
    await stack.cloud.stop()
  })

  afterAll(async () => {
    await stack?.stop()
  })

  const connect = () =>
    mqtt.connectAsync({
      host: '127.0.0.1',
      port: stack.port('tcp'),
      clientId: PASSWORD_DEVICE.id,
      username: PASSWORD_DEVICE.username,
      password: PASSWORD_DEVICE.password,
      reconnectPeriod: 0,
    })

  it('holds up to the bound, then drops QoS 0 and refuses QoS 1, counting each', async () => {
    const device = await connect()
    for (let i = 0; i < BOUND; i++)
      await device.publishAsync(`devices/${PASSWORD_DEVICE.id}/t`, `held-${i}`, { qos: 1 })
    expect(stack.gateway.bridge.status().queue.depth).toBe(BOUND)

    // QoS 0 past the bound: not forwarded, counted; the connection stays.
    await device.publishAsync(`devices/${PASSWORD_DEVICE.id}/t`, 'qos0-over', { qos: 0 })
    await waitUntil(
      () => stack.gateway.metrics.get('uplink_dropped_total{reason="queue_full",qos="0"}') === 1,
    )
    expect(device.connected).toBe(true)

    // QoS 1 past the bound: no PUBACK; the connection is closed so the device keeps the message and sends it again.
    const closed = new Promise<void>((resolve) => device.once('close', () => resolve()))
    let acknowledged = false
    device.publish(`devices/${PASSWORD_DEVICE.id}/t`, 'qos1-over', { qos: 1 }, (err) => {
      acknowledged = !err
    })
    await closed
    device.end(true)
    expect(acknowledged).toBe(false)
    expect(stack.gateway.metrics.get('uplink_dropped_total{reason="queue_full",qos="1"}')).toBe(1)
    expect(stack.logs.events('uplink_queue_full')).toHaveLength(2)
    expect(stack.gateway.bridge.status().queue.depth).toBe(BOUND)
  })

  it('drains when the cloud returns, and then accepts again', async () => {
    await stack.cloud.restart()
    await waitUntil(() => stack.gateway.bridge.status().queue.depth === 0, 15_000, 'queue drained')
    const device = await connect()
    await device.publishAsync(`devices/${PASSWORD_DEVICE.id}/t`, 'accepted again', { qos: 1 })
    await device.endAsync()
    expect(stack.gateway.metrics.get('uplink_accepted_total')).toBe(BOUND + 1)
  })
})
