import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hashPassword } from '../../gateway/index.js'
import { CloudConsumer, summaryLine } from '../helpers/cloud-consumer.js'
import { publishOutcome } from '../integration/clients.js'
import { CLOUD_PREFIX, Stack, waitUntil } from '../integration/harness.js'
import { expectLossless } from './expect-lossless.js'

/** The queue holds 2,000 messages; a device may hold a quarter (500) once it holds 1,000. */
const MAX_MESSAGES = 2000
const SHARE = 0.25
const PASSWORD = 'a device password'
const FLOODER = 'flooder'
const CALM = ['calm-1', 'calm-2']
/** Each calm device publishes this many (bounded by HARD_DEADLINE_MS); the flood lasts until they are done and it was refused. */
const CALM_MESSAGES = 60
const HARD_DEADLINE_MS = 30_000
const CALM_INTERVAL_MS = 10
const FLOOD_WINDOW = 200

const connect = (port: number, id: string) =>
  mqtt.connectAsync({
    host: '127.0.0.1',
    port,
    clientId: id,
    username: id,
    password: PASSWORD,
    reconnectPeriod: 0,
    connectTimeout: 5000,
  })

/**
 * One authorized device floods QoS 1 at full speed while two others publish QoS 1 at a
 * steady rate, with the cloud down: the flooder takes the free space only until the queue
 * is half full, then it is refused first (`device_quota`: no PUBACK, connection closed),
 * while the two others keep getting every PUBACK. When the cloud returns, every message
 * the queue accepted arrives, the others' acknowledged ones included.
 */
describe('one device flooding does not starve the others', () => {
  let stack: Stack
  let consumer: CloudConsumer

  beforeAll(async () => {
    const passwordHash = await hashPassword(PASSWORD)
    stack = await Stack.start({
      persistence: true,
      cloudConfig: ['max_queued_messages 0'],
      cloud: { queue: { maxMessages: MAX_MESSAGES, deviceShare: SHARE } },
      // The queue share is what is tested: the device's own rate (lan.deviceRate) is raised out of the way.
      lan: { deviceRate: { messagesPerSecond: 1_000_000, burst: 1_000_000 } },
      devices: [FLOODER, ...CALM].map((id) => ({ id, username: id, passwordHash })),
    })
    consumer = await CloudConsumer.start({
      ...stack.cloudClient(),
      topic: `${CLOUD_PREFIX}#`,
      clientId: 'share-consumer',
    })
    await stack.waitLinkUp()
    await stack.cloud.stop()
  })

  afterAll(async () => {
    await consumer?.stop()
    await stack?.stop()
  })

  it('refuses the flooder first, keeps acknowledging the others, and loses nothing it accepted', async () => {
    const port = stack.port('tcp')
    const metric = (name: string) => stack.gateway.metrics.get(name)
    const deadline = Date.now() + HARD_DEADLINE_MS
    let calmDone = false

    // The flooder: QoS 1 with FLOOD_WINDOW awaiting PUBACK, reconnecting (after 20 ms) each time it is closed.
    let floodSent = 0
    let floodClosed = 0
    const flood = (async () => {
      while (Date.now() < deadline && !(calmDone && floodClosed > 0)) {
        const client: MqttClient = await connect(port, FLOODER)
        let inFlight = 0
        while (client.connected && Date.now() < deadline && !(calmDone && floodClosed > 0)) {
          while (inFlight < FLOOD_WINDOW) {
            inFlight++
            client.publish(`devices/${FLOODER}/f`, `flood-${floodSent++}`, { qos: 1 }, () => inFlight--)
          }
          await new Promise((r) => setTimeout(r, 1))
        }
        if (!client.connected) floodClosed++
        client.end(true)
        await new Promise((r) => setTimeout(r, 20))
      }
    })()

    // The calm devices: one QoS 1 message each CALM_INTERVAL_MS, each awaiting its PUBACK.
    const acknowledged = new Set<string>()
    const refusedCalm: string[] = []
    const calm = CALM.map(async (id) => {
      const client = await connect(port, id)
      for (let n = 0; n < CALM_MESSAGES && Date.now() < deadline; n++) {
        const payload = `${id}-${n}`
        const outcome = await publishOutcome(client, `devices/${id}/t`, payload)
        if (outcome === 'acked') acknowledged.add(payload)
        else refusedCalm.push(payload)
        if (outcome === 'closed') break
        await new Promise((r) => setTimeout(r, CALM_INTERVAL_MS))
      }
      await client.endAsync()
    })
    await Promise.all(calm)
    calmDone = true
    await flood

    const status = stack.gateway.bridge.status()
    const floodHeld = stack.gateway.bridge.queue.usage(FLOODER).messages
    expect(refusedCalm).toEqual([])
    expect(acknowledged.size).toBe(CALM.length * CALM_MESSAGES)
    // The flooder got the free space up to half the queue, then nothing more.
    expect(floodHeld).toBeGreaterThanOrEqual(MAX_MESSAGES * SHARE)
    expect(floodHeld).toBeLessThanOrEqual(MAX_MESSAGES / 2)
    expect(floodClosed).toBeGreaterThan(0)
    expect(status.queue.devices.top[0]).toMatchObject({ device: FLOODER, messages: floodHeld })
    expect(metric('uplink_dropped_total{reason="device_quota",qos="1"}')).toBeGreaterThan(0)
    expect(metric('uplink_dropped_total{reason="queue_full",qos="1"}')).toBe(0)
    const events = stack.logs.events('uplink_queue_full')
    expect(events.length).toBeGreaterThan(0)
    for (const e of events) expect(e).toMatchObject({ device: FLOODER, reason: 'device_quota' })
    // Counted every time, logged at most 50 times per 10 s for the one device.
    expect(events.length).toBeLessThanOrEqual(50)
    expect(metric('security_events_total{event="uplink_queue_full"}')).toBeGreaterThanOrEqual(events.length)

    // The cloud returns: everything the queue took arrives.
    const accepted = metric('uplink_accepted_total')
    const floodAccepted = accepted - acknowledged.size
    await stack.cloud.restart()
    await waitUntil(() => stack.gateway.bridge.queue.size === 0, 30_000, 'queue drained')
    const missing = await consumer.waitForAll(acknowledged, 15_000)
    const floodArrived = [...consumer.payloads()].filter((p) => p.startsWith('flood-'))
    const t = consumer.tally(floodSent + acknowledged.size, acknowledged, (p) =>
      /^(flood|calm-\d)-\d+$/.test(p),
    )
    console.log(
      summaryLine('flooder and two calm devices, cloud down then back', t, {
        'flooder sent': floodSent,
        'flooder accepted': floodAccepted,
        'flooder refused (device_quota)': metric('uplink_dropped_total{reason="device_quota",qos="1"}'),
        'flooder held by lan.deviceRate': metric('security_events_total{event="device_rate_paced"}'),
        'flooder connections closed': floodClosed,
      }),
    )
    expect(missing).toBe(0)
    expectLossless(t)
    expect(floodArrived.length).toBe(floodAccepted)
    expect(metric('uplink_delivered_total')).toBeGreaterThanOrEqual(accepted)
  })
})
