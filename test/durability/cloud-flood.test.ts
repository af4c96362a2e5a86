import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CloudConsumer, summaryLine } from '../helpers/cloud-consumer.js'
import { DeviceLoad, sentBy } from '../helpers/device-load.js'
import { CLOUD_PREFIX, PASSWORD_DEVICE, Stack, waitUntil } from '../integration/harness.js'
import { expectLossless, UNLIMITED_RATE } from './expect-lossless.js'

const CONNECTIONS = 4
const WINDOW = 500
const FLOOD_MS = 9_000
const PAUSE_AT_MS = 2_000
const PAUSE_MS = 3_500

/**
 * Devices flood QoS 1 while the cloud broker is frozen (SIGSTOP) for a few
 * seconds mid-flood: the cloud drains nothing while the gateway keeps
 * acknowledging, so the backlog builds on disk; after SIGCONT it drains. Every
 * acknowledged message arrives, exactly once after deduplication by gw-seq.
 */
describe('flood with a throttled cloud', () => {
  let stack: Stack
  let consumer: CloudConsumer

  beforeAll(async () => {
    // Unlimited queueing for the consumer: what the cloud broker itself drops is not the gateway's loss.
    // One device floods: its rate (lan.deviceRate) is raised, as an operator would for such a device.
    stack = await Stack.start({ cloudConfig: ['max_queued_messages 0'], lan: UNLIMITED_RATE })
    consumer = await CloudConsumer.start({
      ...stack.cloudClient(),
      topic: `${CLOUD_PREFIX}#`,
      clientId: 'flood-consumer',
    })
    await stack.waitLinkUp()
  })

  afterAll(async () => {
    stack?.cloud.resume()
    await consumer?.stop()
    await stack?.stop()
  })

  it('every acknowledged message arrives once after dedupe, though the cloud froze mid-flood', async () => {
    const load = await DeviceLoad.connect({
      port: stack.port('tcp'),
      username: PASSWORD_DEVICE.username,
      password: PASSWORD_DEVICE.password,
      clientIdPrefix: PASSWORD_DEVICE.id,
      connections: CONNECTIONS,
      topicPrefix: `devices/${PASSWORD_DEVICE.id}/flood`,
      payloadPrefix: 'flood',
      window: WINDOW,
      rate: Number.POSITIVE_INFINITY,
      durationMs: FLOOD_MS,
    })
    let paused = 'before' as 'before' | 'paused' | 'resumed'
    let ackedAtPause = 0
    let ackedWhilePaused = 0
    let maxDepth = 0
    const result = await load.run((acked, elapsed) => {
      maxDepth = Math.max(maxDepth, stack.gateway.bridge.status().queue.depth)
      if (paused === 'before' && elapsed >= PAUSE_AT_MS) {
        stack.cloud.pause()
        paused = 'paused'
        ackedAtPause = acked
      } else if (paused === 'paused' && elapsed >= PAUSE_AT_MS + PAUSE_MS) {
        stack.cloud.resume()
        paused = 'resumed'
        ackedWhilePaused = acked - ackedAtPause
      }
    })
    if (paused === 'paused') stack.cloud.resume()
    await load.close()

    const missing = await consumer.waitForAll(result.acknowledged, 60_000)
    await waitUntil(() => stack.gateway.bridge.queue.size === 0, 30_000, 'queue drained')
    const t = consumer.tally(result.sent, result.acknowledged, sentBy('flood'))
    const rate = Math.round((result.acknowledged.size * 1000) / result.elapsedMs)
    console.log(
      summaryLine('flood, cloud frozen 3.5 s', t, {
        'accepted rate': `${rate}/s`,
        'accepted while frozen': ackedWhilePaused,
        'max queue depth': maxDepth,
      }),
    )
    expect(missing).toBe(0)
    expectLossless(t)
    // The cloud really was the bottleneck: the gateway kept acknowledging while it drained nothing.
    expect(ackedWhilePaused).toBeGreaterThan(1_000)
    expect(maxDepth).toBeGreaterThan(1_000)
    expect(result.closed).toBe(0)
  }, 120_000)
})
