import type { MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { collect, connectDevice, sleep } from './clients.js'
import { PASSWORD_DEVICE, Stack, waitUntil } from './harness.js'

/** lan.retained: past the limit a retained PUBLISH is delivered but not retained, and reported. */
describe('retained messages are bounded', () => {
  let stack: Stack
  let device: MqttClient

  beforeAll(async () => {
    stack = await Stack.start({ lan: { retained: { maxMessages: 3, maxBytes: 100 } } })
    device = await connectDevice(stack.port('tcp'), {
      clientId: PASSWORD_DEVICE.id,
      username: PASSWORD_DEVICE.username,
      password: PASSWORD_DEVICE.password,
    })
  })

  afterAll(async () => {
    await device?.endAsync(true)
    await stack?.stop()
  })

  /** What a new subscriber to the device's tree gets as retained messages. */
  async function retainedSeen(): Promise<string[]> {
    const reader = await connectDevice(stack.port('tcp'), {
      clientId: `${PASSWORD_DEVICE.id}-reader-${Math.random().toString(16).slice(2, 8)}`,
      username: PASSWORD_DEVICE.username,
      password: PASSWORD_DEVICE.password,
    })
    const got = collect(reader)
    await reader.subscribeAsync(`devices/${PASSWORD_DEVICE.id}/r/#`, { qos: 1 })
    await sleep(300)
    await reader.endAsync()
    return got
      .filter((m) => m.retain)
      .map((m) => `${m.topic}=${m.payload}`)
      .sort()
  }

  const topic = (n: number) => `devices/${PASSWORD_DEVICE.id}/r/${n}`

  it('keeps 3 topics; the 4th is delivered live but not retained, and reported', async () => {
    const live = await connectDevice(stack.port('tcp'), {
      clientId: `${PASSWORD_DEVICE.id}-live`,
      username: PASSWORD_DEVICE.username,
      password: PASSWORD_DEVICE.password,
    })
    const got = collect(live)
    await live.subscribeAsync(`devices/${PASSWORD_DEVICE.id}/r/#`, { qos: 1 })
    for (let n = 1; n <= 4; n++) await device.publishAsync(topic(n), `v${n}`, { qos: 1, retain: true })
    await waitUntil(() => got.length === 4, 5000, 'four live deliveries')
    expect(got.map((m) => m.payload)).toEqual(['v1', 'v2', 'v3', 'v4'])
    await live.endAsync()
    expect(await retainedSeen()).toEqual([`${topic(1)}=v1`, `${topic(2)}=v2`, `${topic(3)}=v3`])
    expect(stack.logs.events('retained_limit')).toEqual([
      expect.objectContaining({ device: PASSWORD_DEVICE.id, topic: topic(4), maxMessages: 3, maxBytes: 100 }),
    ])
    expect(stack.gateway.metrics.get('lan_retained_messages')).toBe(3)
  })

  it('replacing a retained topic fits; clearing one (empty payload) makes room', async () => {
    await device.publishAsync(topic(1), 'v1b', { qos: 1, retain: true })
    await device.publishAsync(topic(2), '', { qos: 1, retain: true })
    await device.publishAsync(topic(5), 'v5', { qos: 1, retain: true })
    expect(await retainedSeen()).toEqual([`${topic(1)}=v1b`, `${topic(3)}=v3`, `${topic(5)}=v5`])
  })

  it('the byte limit counts topics and payloads (67 bytes held; 117 in place of the 22 of v3 makes 162)', async () => {
    const before = stack.logs.events('retained_limit').length
    await device.publishAsync(topic(3), 'x'.repeat(97), { qos: 1, retain: true })
    expect(stack.logs.events('retained_limit')).toHaveLength(before + 1)
    expect(await retainedSeen()).toContain(`${topic(3)}=v3`)
  })

  it('a long topic with a one-byte payload counts its topic: the broker keeps the topic too', async () => {
    await device.publishAsync(topic(5), '', { qos: 1, retain: true })
    const before = stack.logs.events('retained_limit').length
    // 45 bytes held (two topics of 20 bytes, payloads of 3 and 2); this one is 80 + 1.
    const long = `devices/${PASSWORD_DEVICE.id}/r/${'t'.repeat(80 - `devices/${PASSWORD_DEVICE.id}/r/`.length)}`
    expect(Buffer.byteLength(long)).toBe(80)
    await device.publishAsync(long, 'x', { qos: 1, retain: true })
    expect(stack.logs.events('retained_limit')).toHaveLength(before + 1)
    expect(await retainedSeen()).not.toContain(`${long}=x`)
  })
})
