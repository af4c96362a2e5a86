import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MosquittoSub } from '../helpers/mosquitto-sub.js'
import { connectDevice } from './clients.js'
import { CLOUD_PREFIX, GATEWAY_ID, PASSWORD_DEVICE, Stack, waitUntil } from './harness.js'

/**
 * A cloud broker without retained messages (mosquitto `retain_available false`; managed brokers
 * with retain off do the same): it refuses a CONNECT with a retained Will (CONNACK 0x9A), and would
 * drop a connection that publishes a retained message. The gateway learns it from the first
 * refusal and goes on without the retain flag, so device messages still arrive.
 */
describe('a cloud broker that takes no retained messages', () => {
  let stack: Stack
  let sub: MosquittoSub

  beforeAll(async () => {
    stack = await Stack.start({
      cloudConfig: ['retain_available false'],
      cloud: { control: { intervalSeconds: 1 } },
    })
    sub = await MosquittoSub.start({ ...stack.cloudClient(), topic: `${CLOUD_PREFIX}#`, qos: 1 })
  })

  afterAll(async () => {
    await sub?.stop()
    await stack?.stop()
  })

  it('the link comes up without a retained Will, and every device message arrives, a retained one without its flag', async () => {
    await stack.waitLinkUp()
    const device = await connectDevice(stack.port('tcp'), {
      clientId: PASSWORD_DEVICE.id,
      username: PASSWORD_DEVICE.username,
      password: PASSWORD_DEVICE.password,
    })
    const topic = `devices/${PASSWORD_DEVICE.id}/state`
    await device.publishAsync(topic, 'plain', { qos: 1 })
    await device.publishAsync(topic, 'retained', { qos: 1, retain: true })
    await device.publishAsync(topic, 'after', { qos: 1 })
    await device.endAsync()
    await waitUntil(() => sub.messages.length >= 3, 10_000)
    expect(sub.messages.map((m) => m.payload)).toEqual(['plain', 'retained', 'after'])

    const metrics = stack.gateway.metrics
    // One refused CONNECT (the retained Will), then the link that carried them, never dropped.
    expect(metrics.get('cloud_connect_attempts_total')).toBe(2)
    expect(metrics.get('cloud_disconnects_total')).toBe(0)
    // The binding and "online" of the session, the device's retained message, and the binding
    // sent again with each health message.
    expect(metrics.get('cloud_retain_cleared_total')).toBeGreaterThanOrEqual(3)
    const said = stack.logs.records.filter((r) => String(r.msg).includes('does not take retained messages'))
    expect(said).toHaveLength(1)
    expect(said[0]).toMatchObject({ level: 40 })
    expect(said[0]!.msg).toContain('it refused the CONNECT with 0x9A, Retain not supported')
  })

  it('a consumer that subscribes after the connection gets the key binding within one health interval', async () => {
    const late = await MosquittoSub.start({
      ...stack.cloudClient(),
      topic: `$gw/${GATEWAY_ID}/binding`,
      qos: 1,
    })
    try {
      await waitUntil(() => late.messages.length >= 1, 10_000)
      expect(late.messages[0]!.topic).toBe(`$gw/${GATEWAY_ID}/binding`)
    } finally {
      await late.stop()
    }
  })
})
