import { X509Certificate } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ConsumedMessage, EnvelopeConsumer } from '../../bridge/consumer.js'
import { connectDevice } from './clients.js'
import { CLOUD_PREFIX, GATEWAY_ID, PASSWORD_DEVICE, Stack, waitUntil } from './harness.js'

interface Received {
  topic: string
  /** The `gw-seq` user property, when there is one. */
  gwSeq: string | undefined
  gwId: string | undefined
  message: ConsumedMessage
}

const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v)

/**
 * docs/cloud-envelope.md: gw-seq numbers device messages only, strictly increasing; control
 * messages (status, health, the Will) carry 0 and no `gw-seq` property, and a consumer never
 * takes them for duplicates of each other.
 */
describe('gw-seq on the cloud link: device messages numbered, control messages 0', () => {
  let stack: Stack
  let cloud: MqttClient
  let consumer: EnvelopeConsumer
  const received: Received[] = []
  const refused: string[] = []
  let chain = Promise.resolve()

  beforeAll(async () => {
    stack = await Stack.start({ cloud: { control: { intervalSeconds: 1 } } })
    await stack.waitLinkUp()
    const c = stack.cloudClient()
    consumer = new EnvelopeConsumer(new X509Certificate(await readFile(c.caFile)), [])
    cloud = await mqtt.connectAsync({
      protocol: 'mqtts',
      host: c.host,
      port: c.port,
      servername: 'localhost',
      ca: await readFile(c.caFile),
      cert: await readFile(c.certFile),
      key: await readFile(c.keyFile),
      rejectUnauthorized: true,
      protocolVersion: 5,
      clientId: 'control-seq-consumer',
      reconnectPeriod: 0,
    })
    cloud.on('message', (topic, payload, packet) => {
      const props = packet.properties?.userProperties ?? {}
      chain = chain.then(async () => {
        if (topic.endsWith('/binding')) {
          await consumer.binding(payload)
          return
        }
        const result = await consumer.message(topic, payload)
        if (result.ok !== true) {
          refused.push(`${topic}: ${JSON.stringify(result)}`)
          return
        }
        received.push({
          topic,
          gwSeq: one(props['gw-seq']),
          gwId: one(props['gw-id']),
          message: result.message,
        })
      })
    })
    // The binding first (retained), so every envelope after it verifies at once.
    await cloud.subscribeAsync(`$gw/${GATEWAY_ID}/binding`, { qos: 1 })
    await cloud.subscribeAsync([`$gw/${GATEWAY_ID}/status`, `$gw/${GATEWAY_ID}/health`, `${CLOUD_PREFIX}#`], {
      qos: 1,
    })
  })

  afterAll(async () => {
    await cloud?.endAsync(true).catch(() => undefined)
    await stack?.stop()
  })

  const control = () => received.filter((r) => r.message.kind === 'control')
  const statuses = () => control().filter((r) => r.message.topic === 'status')
  const stateOf = (r: Received) => JSON.parse(r.message.body.toString()) as { state: string; reason?: string }

  it('device messages carry strictly increasing gw-seq from 1 up, in the envelope and the user property', async () => {
    const device = await connectDevice(stack.port('tcp'), {
      clientId: PASSWORD_DEVICE.id,
      username: PASSWORD_DEVICE.username,
      password: PASSWORD_DEVICE.password,
    })
    for (let i = 0; i < 10; i++) {
      await device.publishAsync(`devices/${PASSWORD_DEVICE.id}/seq`, `m${i}`, { qos: 1 })
    }
    await device.endAsync()
    await waitUntil(() => received.filter((r) => r.message.kind === 'message').length === 10, 10_000, '10')
    const messages = received.filter((r) => r.message.kind === 'message')
    const seqs = messages.map((r) => r.message.seq)
    expect(seqs[0]).toBeGreaterThanOrEqual(1)
    expect(seqs).toEqual(Array.from({ length: 10 }, (_, i) => seqs[0]! + i))
    for (const r of messages) {
      expect(r.gwSeq).toBe(String(r.message.seq))
      expect(r.message.duplicate).toBe(false)
    }
  })

  it('status and health carry gw-seq 0, no gw-seq property, and are never flagged as duplicates', async () => {
    await waitUntil(() => control().filter((r) => r.message.topic === 'health').length >= 3, 10_000, 'health')
    await chain
    expect(statuses().map(stateOf)[0]).toEqual({ state: 'online' })
    expect(control().length).toBeGreaterThanOrEqual(4)
    for (const r of control()) {
      expect(r.message.seq).toBe(0)
      expect(r.gwSeq).toBeUndefined()
      expect(r.gwId).toBe(GATEWAY_ID)
      expect(r.message.duplicate).toBe(false)
    }
    expect(refused).toEqual([])
    // The signed health message carries the counters that are not zero.
    const healthMetrics = () =>
      control()
        .filter((r) => r.message.topic === 'health')
        .map((r) => (JSON.parse(r.message.body.toString()) as { metrics: Record<string, number> }).metrics)
    await waitUntil(
      () => healthMetrics().some((m) => m.uplink_delivered_total === 10),
      10_000,
      'a health message after the 10 messages',
    )
    const metrics = healthMetrics().find((m) => m.uplink_delivered_total === 10)!
    expect(metrics.uplink_accepted_total).toBe(10)
    expect(Object.values(metrics).every((v) => v !== 0)).toBe(true)
  })

  it('the Will, signed when the connection was made, carries gw-seq 0 and a timestamp from before that connection went online', async () => {
    const onlineBefore = statuses()
      .filter((r) => stateOf(r).state === 'online')
      .at(-1)!
    const link = stack.gateway.bridge.link as unknown as { client: { stream: { destroy: () => void } } }
    link.client.stream.destroy()
    await waitUntil(() => statuses().some((r) => stateOf(r).state === 'offline'), 20_000, 'the Will')
    const will = statuses().find((r) => stateOf(r).state === 'offline')!
    expect(stateOf(will)).toEqual({ state: 'offline', reason: 'connection lost' })
    expect(will.message.seq).toBe(0)
    expect(will.gwSeq).toBeUndefined()
    expect(will.message.duplicate).toBe(false)
    // Why the doc says "take the last status received, not the latest timestamp".
    expect(will.message.timestamp).toBeLessThanOrEqual(onlineBefore.message.timestamp)
    await stack.waitLinkUp(20_000)
    await waitUntil(
      () => stateOf(statuses().at(-1)!).state === 'online' && statuses().at(-1) !== onlineBefore,
      20_000,
      'online again',
    )
  })

  it('a clean stop says offline with gw-seq 0', async () => {
    const before = statuses().length
    await stack.gateway.close()
    await waitUntil(() => statuses().length > before, 10_000, 'offline on stop')
    const stopped = statuses().at(-1)!
    expect(stateOf(stopped)).toEqual({ state: 'offline', reason: 'stopped' })
    expect(stopped.message.seq).toBe(0)
    expect(stopped.gwSeq).toBeUndefined()
    expect(refused).toEqual([])
  })
})
