import type { MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readDeadLetters } from '../../bridge/dead-letter/inspect.js'
import { MosquittoSub } from '../helpers/mosquitto-sub.js'
import { connectDevice, publishOutcome } from './clients.js'
import { CLOUD_PREFIX, PASSWORD_DEVICE, Stack, waitUntil } from './harness.js'

/** The cloud broker's limit, sent to the gateway in its CONNACK (MQTT 5 Maximum Packet Size). */
const MAX_PACKET = 100_000
const UNSENDABLE = 'uplink_dead_letter_total{reason="unsendable"}'
const TOPIC = `devices/${PASSWORD_DEVICE.id}/`

/**
 * Records the cloud link cannot carry, accepted on the LAN: a PUBLISH over the cloud
 * broker's Maximum Packet Size, and a LAN topic (valid, under 65,535 bytes) that the
 * mapping's prefix takes over 65,535. Each is set aside as an `unsendable` dead letter
 * instead of wedging the queue (the writer refusing it, or the broker dropping the link,
 * and the same record first again after every reconnect): the messages after it arrive,
 * in order, and the link stays up.
 */
describe('unsendable records do not wedge the uplink', () => {
  let stack: Stack
  let sub: MosquittoSub
  let client: MqttClient

  beforeAll(async () => {
    stack = await Stack.start({ cloudConfig: [`max_packet_size ${MAX_PACKET}`] })
    await stack.waitLinkUp()
    sub = await MosquittoSub.start({ ...stack.cloudClient(), qos: 1, topic: '#' })
    client = await connectDevice(stack.port('tcp'), {
      clientId: PASSWORD_DEVICE.id,
      username: PASSWORD_DEVICE.username,
      password: PASSWORD_DEVICE.password,
    })
  })

  afterAll(async () => {
    await client?.endAsync()
    await sub?.stop()
    await stack?.stop()
  })

  it('a PUBLISH over the Maximum Packet Size and a mapped topic over 65,535 bytes are set aside; the rest is delivered in order', async () => {
    // The LAN topic fits MQTT; with CLOUD_PREFIX instead of `devices/` it is 17 bytes longer and does not.
    const longTopic = `${TOPIC}${'t'.repeat(65_530 - TOPIC.length)}`
    const sent: Array<[string, string | Buffer]> = [
      [`${TOPIC}a`, 'before'],
      [`${TOPIC}big`, Buffer.alloc(MAX_PACKET, 7)],
      [`${TOPIC}b`, 'between'],
      [longTopic, 'long topic'],
      [`${TOPIC}c`, 'after'],
    ]
    for (const [topic, payload] of sent) expect(await publishOutcome(client, topic, payload)).toBe('acked')
    await sub.waitFor(3, 15_000)
    await waitUntil(() => stack.gateway.metrics.get(UNSENDABLE) === 2, 10_000, 'two dead letters')
    expect(sub.messages.map((m) => [m.topic, m.payload])).toEqual([
      [`${CLOUD_PREFIX}${PASSWORD_DEVICE.id}/a`, 'before'],
      [`${CLOUD_PREFIX}${PASSWORD_DEVICE.id}/b`, 'between'],
      [`${CLOUD_PREFIX}${PASSWORD_DEVICE.id}/c`, 'after'],
    ])
    const letters = await readDeadLetters(stack.gateway.bridge.deadLetters.dir)
    expect(letters.map((l) => [l.reason, l.topic.length, l.payloadBytes])).toEqual([
      ['unsendable', `${TOPIC}big`.length, MAX_PACKET],
      ['unsendable', 65_530, 'long topic'.length],
    ])
    expect(letters[0]!.detail).toMatch(
      new RegExp(
        `^its PUBLISH would be \\d+ bytes, over the cloud broker's Maximum Packet Size of ${MAX_PACKET}$`,
      ),
    )
    expect(letters[1]!.detail).toBe('its cloud topic is 65547 bytes; MQTT allows 65535')
    // The link never dropped, and the queue is empty: nothing waits behind them.
    expect(stack.gateway.metrics.get('cloud_disconnects_total')).toBe(0)
    expect(stack.gateway.bridge.queue.size).toBe(0)
    const warned = stack.logs.records.filter((r) => r.reason === 'unsendable' && r.level === 40)
    expect(warned.map((r) => [r.seq, r.device])).toEqual(letters.map((l) => [l.seq, PASSWORD_DEVICE.id]))
  })

  it('a topic with characters the cloud broker refuses (a control character, a non-character) is set aside, not sent', async () => {
    const before = stack.gateway.metrics.get(UNSENDABLE)
    const received = sub.messages.length
    const disconnects = stack.gateway.metrics.get('cloud_disconnects_total')
    for (const [topic, payload] of [
      [`${TOPIC}x\u0001y`, 'control'],
      [`${TOPIC}\uffff`, 'non-character'],
      [`${TOPIC}d`, 'after them'],
    ] as const) {
      expect(await publishOutcome(client, topic, payload)).toBe('acked')
    }
    await sub.waitFor(received + 1, 15_000)
    await waitUntil(
      () => stack.gateway.metrics.get(UNSENDABLE) === before + 2,
      10_000,
      'two more dead letters',
    )
    expect(sub.messages.slice(received).map((m) => m.payload)).toEqual(['after them'])
    // mosquitto would have dropped the link "due to malformed packet" on each: it never saw them.
    expect(stack.gateway.metrics.get('cloud_disconnects_total')).toBe(disconnects)
    const letters = (await readDeadLetters(stack.gateway.bridge.deadLetters.dir)).slice(-2)
    expect(letters.map((l) => l.detail)).toEqual([
      `its cloud topic cannot be sent: it holds the control character U+0001 at ${CLOUD_PREFIX.length + PASSWORD_DEVICE.id.length + 2}`,
      `its cloud topic cannot be sent: it holds the non-character U+FFFF at ${CLOUD_PREFIX.length + PASSWORD_DEVICE.id.length + 1}`,
    ])
  })
})
