import mqttPacket from 'mqtt-packet'
import { afterEach, describe, expect, it } from 'vitest'
import { collect, connectDevice, rawClient, sleep } from './clients.js'
import { PASSWORD_DEVICE, Stack, waitUntil } from './harness.js'

const login = { username: PASSWORD_DEVICE.username, password: PASSWORD_DEVICE.password }

/** A client over raw TCP that subscribes to `filter`, then reads nothing more. */
async function stuckSubscriber(port: number, filter: string) {
  const { socket, seen, closed } = await rawClient(port, {
    clientId: `${PASSWORD_DEVICE.id}-stuck`,
    ...login,
    clean: true,
  })
  socket.write(
    mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos: 0 }] }),
  )
  await waitUntil(() => seen.includes('suback'), 5_000, 'SUBACK')
  // From here on nothing is read: the kernel's buffers fill, then the gateway's.
  socket.pause()
  return { socket, closed }
}

describe('a subscriber that stops reading', () => {
  let stack: Stack | undefined
  afterEach(async () => {
    await stack?.stop()
    stack = undefined
  })

  it('is disconnected as a slow consumer, and delivery to the others goes on meanwhile', async () => {
    stack = await Stack.start({ lan: { deviceRate: { messagesPerSecond: 10_000, burst: 10_000 } } })
    const base = `devices/${PASSWORD_DEVICE.id}`
    const stuck = await stuckSubscriber(stack.port('tcp'), `${base}/flood/#`)
    const reader = await connectDevice(stack.port('tcp'), {
      ...login,
      clientId: `${PASSWORD_DEVICE.id}-reader`,
    })
    await reader.subscribeAsync(`${base}/good`, { qos: 0 })
    const got = collect(reader)
    const publisher = await connectDevice(stack.port('tcp'), {
      ...login,
      clientId: `${PASSWORD_DEVICE.id}-pub`,
    })

    // 400 messages of 64 KB (26 MB) for the stuck subscriber: far over the kernel's buffers.
    const payload = Buffer.alloc(64 * 1024, 0x61)
    for (let i = 0; i < 400; i++) await publisher.publishAsync(`${base}/flood/${i}`, payload, { qos: 0 })
    const started = Date.now()
    for (let i = 0; i < 5; i++) await publisher.publishAsync(`${base}/good`, `good-${i}`, { qos: 0 })
    await waitUntil(() => got.length === 5, 15_000, 'the reader got the 5 messages sent after the flood')
    // Before the change they came after the stuck client's 60 s drain timeout.
    expect(Date.now() - started).toBeLessThan(10_000)
    await waitUntil(
      () => stack!.logs.events('slow_consumer').length === 1,
      10_000,
      'the slow consumer refused',
    )
    // Reading again, it finds its connection closed (a paused socket does not see the end).
    stuck.socket.resume()
    await waitUntil(() => stuck.closed(), 10_000, 'the stuck subscriber disconnected')
    const [event] = stack.logs.events('slow_consumer')
    expect(event).toMatchObject({
      device: PASSWORD_DEVICE.id,
      clientId: `${PASSWORD_DEVICE.id}-stuck`,
      limit: 1024 * 1024,
    })
    expect(Number(event!.bytes)).toBeGreaterThan(1024 * 1024)
    stuck.socket.destroy()
    await sleep(10)
    await Promise.all([reader.endAsync(), publisher.endAsync()])
  }, 60_000)
})
