import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MosquittoSub } from '../helpers/mosquitto-sub.js'
import { CLOUD_PREFIX, PASSWORD_DEVICE, Stack, waitUntil } from './harness.js'

const TOTAL = 300
const STOP_AT = 100
const RESTART_AT = 200

describe('cloud broker stopped and started again mid-stream', () => {
  let stack: Stack
  let sub: MosquittoSub

  beforeAll(async () => {
    stack = await Stack.start({ persistence: true })
    // A persistent session on the cloud broker, so the consumer misses nothing while either side restarts.
    sub = await MosquittoSub.start({
      ...stack.cloudClient(),
      topic: `${CLOUD_PREFIX}#`,
      qos: 1,
      clientId: 'cloud-consumer',
      cleanSession: false,
    })
    await stack.waitLinkUp()
  })

  afterAll(async () => {
    await sub?.stop()
    await stack?.stop()
  })

  it('messages published while it was away arrive after it returns', async () => {
    const device = await mqtt.connectAsync({
      host: '127.0.0.1',
      port: stack.port('tcp'),
      clientId: PASSWORD_DEVICE.id,
      username: PASSWORD_DEVICE.username,
      password: PASSWORD_DEVICE.password,
      reconnectPeriod: 0,
    })
    let acknowledged = 0
    let heldWhileDown = 0
    for (let i = 0; i < TOTAL; i++) {
      if (i === STOP_AT) await stack.cloud.stop()
      if (i === RESTART_AT) {
        heldWhileDown = stack.gateway.bridge.status().queue.depth
        await stack.cloud.restart()
      }
      // Resolves on PUBACK: the gateway holds the message from here on.
      await device.publishAsync(`devices/${PASSWORD_DEVICE.id}/seq`, `m-${i}`, { qos: 1 })
      acknowledged++
      await new Promise((r) => setTimeout(r, 5))
    }
    await device.endAsync()
    expect(acknowledged).toBe(TOTAL)
    expect(heldWhileDown).toBeGreaterThanOrEqual(RESTART_AT - STOP_AT)

    const received = await waitForAll(sub, TOTAL)
    const expected = Array.from({ length: TOTAL }, (_, i) => `m-${i}`)
    expect([...received].sort()).toEqual([...expected].sort())
    expect(stack.gateway.metrics.get('cloud_disconnects_total')).toBeGreaterThanOrEqual(1)
    // The consumer can see the last message a moment before the gateway reads its PUBACK.
    await waitUntil(() => stack.gateway.bridge.status().queue.depth === 0)
    expect(stack.gateway.metrics.get('uplink_delivered_total')).toBeGreaterThanOrEqual(TOTAL)
  })
})

/** Waits until every distinct payload arrived (duplicates from re-sends are allowed at QoS 1). */
async function waitForAll(sub: MosquittoSub, count: number): Promise<Set<string>> {
  const deadline = Date.now() + 30_000
  for (;;) {
    const distinct = new Set(sub.messages.map((m) => m.payload))
    if (distinct.size >= count) return distinct
    if (Date.now() > deadline) throw new Error(`only ${distinct.size} of ${count} distinct messages arrived`)
    await new Promise((r) => setTimeout(r, 50))
  }
}
