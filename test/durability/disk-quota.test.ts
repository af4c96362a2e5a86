import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CloudConsumer, summaryLine } from '../helpers/cloud-consumer.js'
import { publishOutcome } from '../integration/clients.js'
import { CLOUD_PREFIX, PASSWORD_DEVICE, Stack, waitUntil } from '../integration/harness.js'
import { expectLossless } from './expect-lossless.js'

/** The smallest quota the config takes; segments are then 4 KiB. */
const QUOTA = 65_536
const PAYLOAD = 'q'.repeat(200)
const TOPIC = `devices/${PASSWORD_DEVICE.id}/quota`
const MAX_MESSAGES = 1_000

const payloadOf = (name: string) => `${name}:${PAYLOAD}`
const nameOf = (payload: string) => payload.slice(0, payload.indexOf(':'))

/**
 * The disk queue filled to its quota through the gateway while the cloud is
 * down: the stated policy (docs/bridge.md) happens and each refusal is
 * counted; when the cloud returns the queue drains, the space comes back, and
 * the device's retry of the refused QoS 1 message is accepted and delivered.
 */
describe('disk quota reached through the gateway', () => {
  let stack: Stack
  let consumer: CloudConsumer
  const acknowledged = new Set<string>()
  let sent = 0
  let refusedQos1 = ''

  const connect = () =>
    mqtt.connectAsync({
      host: '127.0.0.1',
      port: stack.port('tcp'),
      clientId: PASSWORD_DEVICE.id,
      username: PASSWORD_DEVICE.username,
      password: PASSWORD_DEVICE.password,
      reconnectPeriod: 0,
    })
  const bytes = () => stack.gateway.bridge.queue.stats().bytes
  const dropped = (qos: 0 | 1) =>
    stack.gateway.metrics.get(`uplink_dropped_total{reason="queue_full",qos="${qos}"}`)

  beforeAll(async () => {
    stack = await Stack.start({
      persistence: true,
      // One device fills the whole queue: no per-device share, so the quota's own steps show.
      cloud: { queue: { quotaBytes: QUOTA, deviceShare: 1 } },
      cloudConfig: ['max_queued_messages 0'],
    })
    consumer = await CloudConsumer.start({
      ...stack.cloudClient(),
      topic: `${CLOUD_PREFIX}#`,
      clientId: 'quota-consumer',
    })
    await stack.waitLinkUp()
    await stack.cloud.stop()
  })

  afterAll(async () => {
    await consumer?.stop()
    await stack?.stop()
  })

  it('above 90 % of the quota QoS 0 is refused and counted; QoS 1 is still accepted', async () => {
    const device = await connect()
    let n = 0
    while (bytes() < 0.92 * QUOTA && n < MAX_MESSAGES) {
      const payload = payloadOf(`held-${n++}`)
      sent++
      expect(await publishOutcome(device, TOPIC, payload, { qos: 1 })).toBe('acked')
      acknowledged.add(payload)
    }
    expect(bytes()).toBeGreaterThan(0.9 * QUOTA)

    // QoS 0 over 90 %: not forwarded, counted, the connection stays.
    sent++
    expect(await publishOutcome(device, TOPIC, payloadOf('qos0-over-90'), { qos: 0 })).toBe('acked')
    await waitUntil(() => dropped(0) === 1, 5_000, 'QoS 0 drop counted')
    expect(stack.gateway.bridge.queue.stats().dropped.qos0_quota).toBe(1)
    expect(device.connected).toBe(true)

    // QoS 1 between 90 % and 100 %: still held and acknowledged.
    const accepted = payloadOf('qos1-over-90')
    sent++
    expect(await publishOutcome(device, TOPIC, accepted, { qos: 1 })).toBe('acked')
    acknowledged.add(accepted)
    await device.endAsync()
  })

  it('at 100 % a QoS 1 message gets no PUBACK: the connection closes so the device keeps it; counted', async () => {
    const device = await connect()
    let n = 0
    for (;;) {
      const payload = payloadOf(`fill-${n++}`)
      sent++
      const outcome = await publishOutcome(device, TOPIC, payload, { qos: 1 })
      if (outcome === 'closed') {
        refusedQos1 = payload
        break
      }
      acknowledged.add(payload)
      expect(n, 'the quota never refused a QoS 1 message').toBeLessThan(MAX_MESSAGES)
    }
    device.end(true)
    expect(dropped(1)).toBe(1)
    const stats = stack.gateway.bridge.queue.stats()
    expect(stats.dropped).toEqual({
      qos0_quota: 1,
      qos1_quota: 1,
      qos0_capacity: 0,
      qos1_capacity: 0,
      qos0_device_quota: 0,
      qos1_device_quota: 0,
    })
    expect(stats.bytes).toBeLessThanOrEqual(QUOTA)
    expect(stats.depth).toBe(acknowledged.size)
    expect(stack.logs.events('uplink_queue_full')).toHaveLength(2)
  })

  it('when the cloud returns the queue drains, space comes back, and the retried message is accepted', async () => {
    const full = bytes()
    await stack.cloud.restart()
    await waitUntil(() => stack.gateway.bridge.queue.size === 0, 30_000, 'queue drained')
    // Emptied segments are deleted: what is left is the active segment and its acknowledgements.
    await waitUntil(() => bytes() < QUOTA / 4, 10_000, 'space returned')
    const freed = full - bytes()

    // The device sends again what was refused (it kept it), and new traffic of both QoS is accepted.
    const device = await connect()
    sent += 3
    expect(await publishOutcome(device, TOPIC, refusedQos1, { qos: 1 })).toBe('acked')
    acknowledged.add(refusedQos1)
    expect(await publishOutcome(device, TOPIC, payloadOf('qos0-after'), { qos: 0 })).toBe('acked')
    expect(await publishOutcome(device, TOPIC, payloadOf('qos1-after'), { qos: 1 })).toBe('acked')
    acknowledged.add(payloadOf('qos1-after'))
    await device.endAsync()

    const missing = await consumer.waitForAll(acknowledged, 30_000)
    await waitUntil(() => stack.gateway.bridge.queue.size === 0, 15_000, 'queue drained again')
    const t = consumer.tally(sent, acknowledged, (p) => p.endsWith(PAYLOAD))
    const arrived = new Set([...consumer.payloads()].map(nameOf))
    console.log(
      summaryLine('disk quota 64 KiB, cloud down then back', t, {
        'QoS 0 refused': dropped(0),
        'QoS 1 refused': dropped(1),
        'bytes freed': freed,
      }),
    )
    expect(missing).toBe(0)
    expectLossless(t)
    // The QoS 0 message refused above 90 % never reached the cloud; the one sent after recovery did.
    expect(arrived.has('qos0-over-90')).toBe(false)
    expect(arrived.has('qos0-after')).toBe(true)
    expect(dropped(0)).toBe(1)
    expect(dropped(1)).toBe(1)
  })
})
