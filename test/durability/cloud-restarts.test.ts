import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CloudConsumer, summaryLine } from '../helpers/cloud-consumer.js'
import { DeviceLoad, sentBy } from '../helpers/device-load.js'
import { CLOUD_PREFIX, PASSWORD_DEVICE, Stack, waitUntil } from '../integration/harness.js'
import { expectLossless, UNLIMITED_RATE } from './expect-lossless.js'

const OUTAGES = 4
const RATE = 1_500
const UP_MS = 1_500
const DOWN_MS = 1_500

/**
 * The cloud broker stopped (SIGTERM; mosquitto saves its persistence) and
 * started again on the same port, several times while devices publish QoS 1:
 * the gateway holds what it acknowledged while the cloud is away and sends it
 * when it is back. The consumer has a persistent session, so the cloud broker
 * keeps its messages across each restart.
 */
describe('cloud broker stopped and restarted several times mid-stream', () => {
  let stack: Stack
  let consumer: CloudConsumer

  beforeAll(async () => {
    // One device offers more than the default lan.deviceRate: raised, as an operator would.
    stack = await Stack.start({
      persistence: true,
      cloudConfig: ['max_queued_messages 0'],
      lan: UNLIMITED_RATE,
    })
    consumer = await CloudConsumer.start({
      ...stack.cloudClient(),
      topic: `${CLOUD_PREFIX}#`,
      clientId: 'restarts-consumer',
    })
    await stack.waitLinkUp()
  })

  afterAll(async () => {
    await consumer?.stop()
    await stack?.stop()
  })

  it(`zero acknowledged messages lost over ${OUTAGES} cloud restarts`, async () => {
    const load = await DeviceLoad.connect({
      port: stack.port('tcp'),
      username: PASSWORD_DEVICE.username,
      password: PASSWORD_DEVICE.password,
      clientIdPrefix: PASSWORD_DEVICE.id,
      connections: 4,
      topicPrefix: `devices/${PASSWORD_DEVICE.id}/restarts`,
      payloadPrefix: 'restarts',
      window: 200,
      rate: RATE,
      durationMs: 60_000,
    })
    const heldWhileDown: number[] = []
    const outages = (async () => {
      for (let i = 0; i < OUTAGES; i++) {
        await sleep(UP_MS)
        await stack.cloud.stop()
        await sleep(DOWN_MS)
        heldWhileDown.push(stack.gateway.bridge.queue.size)
        await stack.cloud.restart()
        await stack.waitLinkUp(15_000)
      }
      await sleep(UP_MS)
    })()
    const running = load.run()
    await outages.finally(() => load.stop())
    const result = await running
    await load.close()

    const missing = await consumer.waitForAll(result.acknowledged, 60_000)
    await waitUntil(() => stack.gateway.bridge.queue.size === 0, 30_000, 'queue drained')
    const t = consumer.tally(result.sent, result.acknowledged, sentBy('restarts'))
    const disconnects = stack.gateway.metrics.get('cloud_disconnects_total')
    console.log(
      summaryLine(`cloud stopped and restarted x${OUTAGES}`, t, {
        'offered rate': `${RATE}/s`,
        'held at each restart': heldWhileDown.join('/'),
        'cloud disconnects': disconnects ?? 0,
      }),
    )
    expect(missing).toBe(0)
    expectLossless(t)
    expect(disconnects).toBe(OUTAGES)
    // Each time, the devices went on being acknowledged while the cloud was away.
    expect(heldWhileDown).toHaveLength(OUTAGES)
    for (const held of heldWhileDown) expect(held).toBeGreaterThan(RATE / 2)
    expect(result.closed).toBe(0)
  }, 120_000)
})
