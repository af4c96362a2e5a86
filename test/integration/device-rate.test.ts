import { readFile, writeFile } from 'node:fs/promises'
import type { MqttClient } from 'mqtt'
import { afterEach, describe, expect, it } from 'vitest'
import { parse, stringify } from 'yaml'
import { loadConfig } from '../../config/index.js'
import { mosquittoPub } from '../helpers/mosquitto-clients.js'
import { connectDevice, sleep, subscribeGranted } from './clients.js'
import { PASSWORD_DEVICE, PSK_DEVICE, Stack } from './harness.js'

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
 * lan.deviceRate: each device's PUBLISH packets are spaced to its rate (default 100 a
 * second, bursts of 200) before anything else is done with them: a packet past it waits
 * for its turn and the connection is read no further meanwhile (TCP back-pressure). Nothing
 * is dropped and the device is not disconnected; every held packet is a `device_rate_paced`
 * security event.
 */
describe('the per-device rate', () => {
  let stack: Stack | undefined
  afterEach(async () => {
    await stack?.stop()
    stack = undefined
  })

  it('lets the burst through, then holds a flooder to its rate: every message acknowledged and forwarded, none dropped', async () => {
    stack = await Stack.start({
      policies: { floodDisconnectAfter: 100, rules: [ownPrefix] },
      lan: { deviceRate: { messagesPerSecond: 200, burst: 100 } },
    })
    const client = await connect(stack)
    const started = performance.now()
    const result = await flood(client, 500)
    const elapsedMs = performance.now() - started
    await client.endAsync()
    expect(result).toEqual({ acked: 500, closed: false })
    // 400 past the burst, one each 5 ms: at least 2 s however fast the machine (a lower bound only).
    expect(elapsedMs).toBeGreaterThanOrEqual(1_900)
    const metrics = stack.gateway.metrics
    expect(metrics.get('uplink_accepted_total')).toBe(500)
    expect(metrics.get('security_events_total{event="rate_limited"}')).toBe(0)
    expect(metrics.get('security_events_total{event="flood_disconnect"}')).toBe(0)
    // The burst of 100 went at once, and what refilled while the client was slow to send; the rest was held.
    const paced = metrics.get('security_events_total{event="device_rate_paced"}')
    expect(paced).toBeGreaterThanOrEqual(300)
    expect(paced).toBeLessThanOrEqual(400)
    expect(stack.logs.events('device_rate_paced')[0]).toMatchObject({
      device: PASSWORD_DEVICE.id,
      rule: 'lan.deviceRate',
      messagesPerSecond: 200,
      burst: 100,
    })
  })

  it('reads a device of large packets no faster than its rate: what it sent waits in TCP, not in the gateway', async () => {
    // 200 KB QoS 0 PUBLISH packets written as fast as the socket takes them. Each one past the
    // burst is held for its turn (a device_rate_paced event each); the connection must be read no
    // further meanwhile, or they pile up in the gateway's memory (they did: aedes reads at every
    // 'readable' whatever it holds, so a device of packets over ~64 KB was read at TCP's pace).
    stack = await Stack.start({ lan: { deviceRate: { messagesPerSecond: 10, burst: 10 } } })
    const client = await connect(stack)
    const stream = client.stream as unknown as NodeJS.WritableStream & { writableLength: number }
    const packet = Buffer.concat([
      Buffer.from([0x30, 0xc0, 0x9a, 0x0c]), // PUBLISH QoS 0, remaining length 200,000
      Buffer.from([0, TOPIC.length]),
      Buffer.from(TOPIC),
      Buffer.alloc(200_000 - 2 - TOPIC.length, 0x61),
    ])
    const started = Date.now()
    let written = 0
    // Bounded: 3 s and 2,000 packets (400 MB).
    while (Date.now() - started < 3_000 && written < 2_000) {
      if (stream.writableLength < 1_000_000) {
        stream.write(packet)
        written++
      } else await sleep(5)
    }
    const seconds = (Date.now() - started) / 1000
    const paced = stack.gateway.metrics.get('security_events_total{event="device_rate_paced"}')
    // What was read: the burst, then 10 a second, plus the packets the guard and the broker held
    // when it stopped reading. Without the hold, hundreds.
    expect((stream as unknown as { destroyed: boolean }).destroyed).toBe(false)
    expect(written).toBeGreaterThan(60)
    expect(paced).toBeLessThanOrEqual(Math.ceil(10 * seconds) + 10)
    client.end(true)
  })

  it('a flooder does not hold back another device: its QoS 1 goes through while the flooder waits', async () => {
    // Refilled at one message in 100 s: past the burst, the flooder waits for the rest of the test.
    stack = await Stack.start({ lan: { deviceRate: { messagesPerSecond: 0.01, burst: 20 } } })
    const flooder = await connect(stack)
    const flooding = flood(flooder, 40)
    await stack.logs.waitFor((r) => r.event === 'device_rate_paced')
    // Another device (mosquitto_pub over TLS-PSK) gets its PUBACK meanwhile: mosquitto_pub exits 0 only then.
    const other = await mosquittoPub({
      host: '127.0.0.1',
      port: stack.port('tls-psk'),
      psk: { identity: PSK_DEVICE.identity, keyHex: PSK_DEVICE.keyHex },
      clientId: PSK_DEVICE.id,
      topic: `devices/${PSK_DEVICE.id}/telemetry`,
      message: 'from another device',
      qos: 1,
    })
    expect(other.code).toBe(0)
    // The flooder's burst of 20 and the other device's message; none of the flooder's held ones.
    for (let i = 0; i < 200 && stack.gateway.metrics.get('uplink_accepted_total') < 21; i++) await sleep(25)
    expect(stack.gateway.metrics.get('uplink_accepted_total')).toBe(21)
    flooder.end(true)
    await flooding
  })

  it('is applied by a reload: raised, the held messages go at once and the rest at full speed', async () => {
    stack = await Stack.start({ lan: { deviceRate: { messagesPerSecond: 0.01, burst: 50 } } })
    const client = await connect(stack)
    const flooding = flood(client, 100)
    await stack.logs.waitFor((r) => r.event === 'device_rate_paced')
    // The burst reaches the uplink; the rest waits (bounded poll: the burst's hand-over is asynchronous).
    for (let i = 0; i < 200 && stack.gateway.metrics.get('uplink_accepted_total') < 50; i++) await sleep(25)
    expect(stack.gateway.metrics.get('uplink_accepted_total')).toBe(50)
    const config = parse(await readFile(stack.configFile, 'utf8')) as { lan: Record<string, unknown> }
    config.lan.deviceRate = { messagesPerSecond: 100_000, burst: 100_000 }
    await writeFile(stack.configFile, stringify(config), { mode: 0o600 })
    await stack.gateway.reload(await loadConfig(stack.configFile))
    expect(await flooding).toEqual({ acked: 100, closed: false })
    const second = await flood(client, 100)
    await client.endAsync()
    expect(second).toEqual({ acked: 100, closed: false })
    expect(stack.gateway.metrics.get('uplink_accepted_total')).toBe(200)
    expect(stack.gateway.metrics.get('security_events_total{event="rate_limited"}')).toBe(0)
  })

  it('SUBSCRIBE filters take turns of the same rate: a SUBSCRIBE of 300 filters is granted, paced past the burst', async () => {
    stack = await Stack.start({
      policies: { rules: [ownPrefix] },
      lan: { deviceRate: { messagesPerSecond: 200, burst: 100 } },
    })
    const client = await connect(stack)
    const filters = Object.fromEntries(
      Array.from({ length: 300 }, (_, i) => [`devices/${PASSWORD_DEVICE.id}/s/${i}`, { qos: 1 as const }]),
    )
    const started = performance.now()
    const granted = await subscribeGranted(client, filters)
    const elapsedMs = performance.now() - started
    await client.endAsync()
    expect(granted).toEqual(Array(300).fill(1))
    // 200 past the burst, one each 5 ms: at least 1 s (a lower bound only).
    expect(elapsedMs).toBeGreaterThanOrEqual(950)
    const paced = stack.gateway.metrics.get('security_events_total{event="device_rate_paced"}')
    expect(paced).toBeGreaterThanOrEqual(150)
    expect(paced).toBeLessThanOrEqual(200)
    expect(stack.logs.events('device_rate_paced')[0]).toMatchObject({
      device: PASSWORD_DEVICE.id,
      rule: 'lan.deviceRate',
      topic: expect.stringMatching(/^devices\/pass-dev\/s\/\d+$/),
    })
  })

  it('can be raised by the operator: 5,000 messages at full speed all go to the uplink', async () => {
    stack = await Stack.start({ lan: { deviceRate: { messagesPerSecond: 100_000, burst: 100_000 } } })
    const client = await connect(stack)
    const result = await flood(client, 5000)
    await client.endAsync()
    expect(result).toEqual({ acked: 5000, closed: false })
    expect(stack.gateway.metrics.get('uplink_accepted_total')).toBe(5000)
    expect(stack.gateway.metrics.get('security_events_total{event="device_rate_paced"}')).toBe(0)
  })
})

const ownPrefix = { name: 'own prefix', who: 'everyone', topic: 'devices/%d/#', action: 'both' } as const
