import { setTimeout as sleep } from 'node:timers/promises'
import type { Subscription } from 'rxjs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { LinkState } from '../../bridge/cloud-link.js'
import { CloudConsumer, summaryLine } from '../helpers/cloud-consumer.js'
import { DeviceLoad, sentBy } from '../helpers/device-load.js'
import { CLOUD_PREFIX, PASSWORD_DEVICE, Stack, waitUntil } from '../integration/harness.js'
import { expectLossless, UNLIMITED_RATE } from './expect-lossless.js'

/** The lowest the config allows; mqtt.js pings after it and gives up 1.5 keepalives after the last packet in. */
const KEEPALIVE_S = 5
const FREEZE_MS = 3 * KEEPALIVE_S * 1000
const RATE = 1_000

/**
 * The cloud broker frozen with SIGSTOP for three keepalive periods while
 * devices publish: its sockets stay open but it answers nothing, not even
 * PINGREQ. The gateway must notice by itself (keepalive), drop the link,
 * keep acknowledging devices from its queue, reconnect after SIGCONT and
 * deliver everything.
 */
describe('cloud broker frozen (SIGSTOP) for longer than the keepalive', () => {
  let stack: Stack
  let consumer: CloudConsumer
  let watch: Subscription | undefined

  beforeAll(async () => {
    stack = await Stack.start({
      cloud: { keepaliveSeconds: KEEPALIVE_S, connectTimeoutMs: 2_000 },
      cloudConfig: ['max_queued_messages 0'],
      // One device offers the default lan.deviceRate exactly: raised, so pacing jitter is not dropped.
      lan: UNLIMITED_RATE,
    })
    consumer = await CloudConsumer.start({
      ...stack.cloudClient(),
      topic: `${CLOUD_PREFIX}#`,
      clientId: 'freeze-consumer',
    })
    await stack.waitLinkUp()
  })

  afterAll(async () => {
    watch?.unsubscribe()
    stack?.cloud.resume()
    await consumer?.stop()
    await stack?.stop()
  })

  it('the gateway detects the hung peer, reconnects after SIGCONT, and loses nothing acknowledged', async () => {
    const states: Array<{ at: number; state: LinkState }> = []
    watch = stack.gateway.bridge.link.state$.subscribe((state) => states.push({ at: Date.now(), state }))
    const load = await DeviceLoad.connect({
      port: stack.port('tcp'),
      username: PASSWORD_DEVICE.username,
      password: PASSWORD_DEVICE.password,
      clientIdPrefix: PASSWORD_DEVICE.id,
      connections: 2,
      topicPrefix: `devices/${PASSWORD_DEVICE.id}/freeze`,
      payloadPrefix: 'freeze',
      window: 200,
      rate: RATE,
      durationMs: 60_000,
    })
    let frozenAt = 0
    let resumedAt = 0
    let heldAtResume = 0
    const freeze = (async () => {
      await sleep(1_500)
      frozenAt = Date.now()
      stack.cloud.pause()
      await sleep(FREEZE_MS)
      heldAtResume = stack.gateway.bridge.queue.size
      resumedAt = Date.now()
      stack.cloud.resume()
      await stack.waitLinkUp(30_000)
      await sleep(1_500)
    })()
    const running = load.run()
    await freeze.finally(() => {
      stack.cloud.resume()
      load.stop()
    })
    const result = await running
    await load.close()

    const missing = await consumer.waitForAll(result.acknowledged, 60_000)
    await waitUntil(() => stack.gateway.bridge.queue.size === 0, 30_000, 'queue drained')
    const t = consumer.tally(result.sent, result.acknowledged, sentBy('freeze'))
    const down = states.find((s) => s.at >= frozenAt && s.state.status !== 'connected')
    const detectedAfterMs = down ? down.at - frozenAt : -1
    console.log(
      summaryLine(`cloud frozen ${FREEZE_MS / 1000} s (keepalive ${KEEPALIVE_S} s)`, t, {
        'offered rate': `${RATE}/s`,
        'link down after': `${detectedAfterMs} ms`,
        'held at SIGCONT': heldAtResume,
      }),
    )
    expect(missing).toBe(0)
    expectLossless(t)
    // Detected while the broker was still frozen (it never closed the connection), within ~2 keepalives.
    expect(down, 'the link never went down while the cloud was frozen').toBeDefined()
    expect(down!.at).toBeLessThan(resumedAt)
    expect(stack.gateway.metrics.get('cloud_disconnects_total')).toBeGreaterThanOrEqual(1)
    expect(heldAtResume).toBeGreaterThan(RATE * KEEPALIVE_S)
    expect(result.closed).toBe(0)
  }, 120_000)
})
