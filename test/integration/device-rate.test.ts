import { readFile, writeFile } from 'node:fs/promises'
import type { MqttClient } from 'mqtt'
import { afterEach, describe, expect, it } from 'vitest'
import { parse, stringify } from 'yaml'
import { loadConfig } from '../../config/index.js'
import { connectDevice } from './clients.js'
import { PASSWORD_DEVICE, Stack } from './harness.js'

const TOPIC = `devices/${PASSWORD_DEVICE.id}/rate`
const MAX_SENT = 20_000
const WINDOW = 500

/** QoS 1 as fast as PUBACKs come (WINDOW awaiting), until the gateway closes the connection or `count` are acknowledged. */
async function flood(client: MqttClient, count: number): Promise<{ acked: number; closed: boolean }> {
  let sent = 0
  let acked = 0
  let inFlight = 0
  let closed = false
  client.once('close', () => {
    closed = true
  })
  while (!closed && acked < count && sent < MAX_SENT) {
    while (inFlight < WINDOW && sent < count) {
      inFlight++
      sent++
      client.publish(TOPIC, `m-${sent}`, { qos: 1 }, (err) => {
        inFlight--
        if (!err) acked++
      })
    }
    await new Promise((r) => setTimeout(r, 1))
  }
  return { acked, closed }
}

const connect = (stack: Stack) =>
  connectDevice(stack.port('tcp'), {
    clientId: PASSWORD_DEVICE.id,
    username: PASSWORD_DEVICE.username,
    password: PASSWORD_DEVICE.password,
  })

/**
 * lan.deviceRate: each device's PUBLISH packets go through a token bucket (default 1,000 a
 * second, bursts of 2,000) before anything else is done with them; past it they are dropped
 * as over a policy rate (`rate_limited`), and a device that goes on is disconnected
 * (`flood_disconnect` after floodDisconnectAfter such messages in 10 s).
 */
describe('the per-device rate', () => {
  let stack: Stack | undefined
  afterEach(async () => {
    await stack?.stop()
    stack = undefined
  })

  it('by default lets a burst of 2,000 through, then drops and counts, then disconnects a flooder', async () => {
    stack = await Stack.start({ policies: { floodDisconnectAfter: 100, rules: [ownPrefix] } })
    const client = await connect(stack)
    const result = await flood(client, MAX_SENT)
    client.end(true)
    expect(result.closed).toBe(true)
    const metrics = stack.gateway.metrics
    // Every message within the burst went to the uplink (and what the bucket refilled meanwhile).
    expect(metrics.get('uplink_accepted_total')).toBeGreaterThanOrEqual(2000)
    expect(metrics.get('security_events_total{event="rate_limited"}')).toBe(100)
    expect(metrics.get('security_events_total{event="flood_disconnect"}')).toBeGreaterThanOrEqual(1)
    const limited = stack.logs.events('rate_limited')
    expect(limited[0]).toMatchObject({
      device: PASSWORD_DEVICE.id,
      rule: 'lan.deviceRate',
      limit: 'device_messages',
      msg: 'PUBLISH over the device_messages rate limit: dropped',
    })
    expect(stack.logs.events('flood_disconnect')[0]).toMatchObject({
      device: PASSWORD_DEVICE.id,
      rule: 'lan.deviceRate',
    })
  })

  it('is applied by a reload: raised, the same burst goes through', async () => {
    // Refilled at one message in 100 s: nothing comes back during the test.
    stack = await Stack.start({ lan: { deviceRate: { messagesPerSecond: 0.01, burst: 50 } } })
    const client = await connect(stack)
    const first = await flood(client, 100)
    expect(first).toEqual({ acked: 100, closed: false })
    expect(stack.gateway.metrics.get('uplink_accepted_total')).toBe(50)
    expect(stack.gateway.metrics.get('security_events_total{event="rate_limited"}')).toBe(50)
    const config = parse(await readFile(stack.configFile, 'utf8')) as { lan: Record<string, unknown> }
    config.lan.deviceRate = { messagesPerSecond: 100_000, burst: 100_000 }
    await writeFile(stack.configFile, stringify(config), { mode: 0o600 })
    await stack.gateway.reload(await loadConfig(stack.configFile))
    const second = await flood(client, 100)
    await client.endAsync()
    expect(second).toEqual({ acked: 100, closed: false })
    expect(stack.gateway.metrics.get('uplink_accepted_total')).toBe(150)
    expect(stack.gateway.metrics.get('security_events_total{event="rate_limited"}')).toBe(50)
  })

  it('can be raised by the operator: 5,000 messages at full speed all go to the uplink', async () => {
    stack = await Stack.start({ lan: { deviceRate: { messagesPerSecond: 100_000, burst: 100_000 } } })
    const client = await connect(stack)
    const result = await flood(client, 5000)
    await client.endAsync()
    expect(result).toEqual({ acked: 5000, closed: false })
    expect(stack.gateway.metrics.get('uplink_accepted_total')).toBe(5000)
    expect(stack.gateway.metrics.get('security_events_total{event="rate_limited"}')).toBe(0)
  })
})

const ownPrefix = { name: 'own prefix', who: 'everyone', topic: 'devices/%d/#', action: 'both' } as const
