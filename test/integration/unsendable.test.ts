import { appendFile } from 'node:fs/promises'
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
// The LAN topic fits MQTT; with CLOUD_PREFIX instead of `devices/` it is 17 bytes longer and does not.
const LONG_TOPIC = `${TOPIC}${'t'.repeat(65_530 - TOPIC.length)}`

/** mosquitto_sub with a persistent session (no clean session, a fixed client id). */
const SESSION = ['-c', '-i', 'unsendable-observer']

const connect = (stack: Stack) =>
  connectDevice(stack.port('tcp'), {
    clientId: PASSWORD_DEVICE.id,
    username: PASSWORD_DEVICE.username,
    password: PASSWORD_DEVICE.password,
  })

/**
 * What the cloud side will need is checked at the LAN side, before the PUBACK: a
 * PUBLISH over the cloud broker's Maximum Packet Size (from its last CONNACK) and a LAN
 * topic (valid, under 65,535 bytes) that the mapping's prefix takes over 65,535 are
 * denied PUBLISHes (`publish_denied`, reason `unsendable`): the connection is closed, or
 * with `deniedPublish: drop` the message is acknowledged and dropped; nothing is queued.
 */
describe('a message the cloud could not take is refused at the LAN', () => {
  for (const deniedPublish of ['disconnect', 'drop'] as const) {
    describe(`deniedPublish: ${deniedPublish}`, () => {
      let stack: Stack
      let sub: MosquittoSub

      beforeAll(async () => {
        stack = await Stack.start({
          cloudConfig: [`max_packet_size ${MAX_PACKET}`],
          policies: {
            deniedPublish,
            // As long as MQTT allows: the LAN topic passes, and the cloud prefix takes it over.
            maxTopicBytes: 65_535,
            rules: [{ name: 'own prefix', who: 'everyone', topic: 'devices/%d/#', action: 'both' }],
          },
        })
        await stack.waitLinkUp()
        sub = await MosquittoSub.start({ ...stack.cloudClient(), qos: 1, topic: '#' })
      })

      afterAll(async () => {
        await sub?.stop()
        await stack?.stop()
      })

      it('refuses both before the PUBACK, queues neither, and delivers the rest in order', async () => {
        const expected = deniedPublish === 'drop' ? 'acked' : 'closed'
        const sent: Array<[string, string | Buffer, 'acked' | 'closed']> = [
          [`${TOPIC}a`, 'before', 'acked'],
          [`${TOPIC}big`, Buffer.alloc(MAX_PACKET, 7), expected],
          [`${TOPIC}b`, 'between', 'acked'],
          [LONG_TOPIC, 'long topic', expected],
          [`${TOPIC}c`, 'after', 'acked'],
        ]
        let client: MqttClient = await connect(stack)
        for (const [topic, payload, outcome] of sent) {
          expect(await publishOutcome(client, topic, payload)).toBe(outcome)
          if (outcome === 'closed') {
            client.end(true)
            client = await connect(stack)
          }
        }
        await client.endAsync()
        await sub.waitFor(3, 15_000)
        expect(sub.messages.map((m) => [m.topic, m.payload])).toEqual([
          [`${CLOUD_PREFIX}${PASSWORD_DEVICE.id}/a`, 'before'],
          [`${CLOUD_PREFIX}${PASSWORD_DEVICE.id}/b`, 'between'],
          [`${CLOUD_PREFIX}${PASSWORD_DEVICE.id}/c`, 'after'],
        ])
        const metrics = stack.gateway.metrics
        expect(metrics.get('uplink_dropped_total{reason="unsendable",qos="1"}')).toBe(2)
        expect(metrics.get('uplink_accepted_total')).toBe(3)
        expect(metrics.get(UNSENDABLE)).toBe(0)
        expect(stack.gateway.bridge.deadLetters.stats().depth).toBe(0)
        const denied = stack.logs.events('publish_denied')
        expect(denied.map((e) => [e.reason, e.device, e.action, e.detail])).toEqual([
          [
            'unsendable',
            PASSWORD_DEVICE.id,
            deniedPublish,
            expect.stringMatching(
              new RegExp(
                `^its PUBLISH would be \\d+ bytes, over the cloud broker's Maximum Packet Size of ${MAX_PACKET}$`,
              ),
            ),
          ],
          [
            'unsendable',
            PASSWORD_DEVICE.id,
            deniedPublish,
            'its cloud topic is 65547 bytes; MQTT allows 65535',
          ],
        ])
        expect(metrics.get('cloud_disconnects_total')).toBe(0)
      })

      it('takes a message just under the Maximum Packet Size', async () => {
        const client = await connect(stack)
        // Topic, envelope (signature, gw ids, seq, time) and user properties take less than 1,000 bytes.
        expect(await publishOutcome(client, `${TOPIC}fits`, Buffer.alloc(MAX_PACKET - 1000, 1))).toBe('acked')
        await client.endAsync()
        await sub.waitFor(4, 15_000)
        expect(sub.messages.at(-1)!.topic).toBe(`${CLOUD_PREFIX}${PASSWORD_DEVICE.id}/fits`)
      })
    })
  }
})

/**
 * A record the LAN side could not have refused: accepted while the cloud broker set no
 * limit, then the broker comes back with a Maximum Packet Size it is over. It is set
 * aside as an `unsendable` dead letter instead of wedging the queue (the writer refusing
 * it, or the broker dropping the link, and the same record first again after every
 * reconnect): the messages after it arrive, in order, and the link stays up.
 */
describe('a queued record the cloud can no longer take does not wedge the uplink', () => {
  let stack: Stack
  let sub: MosquittoSub

  beforeAll(async () => {
    stack = await Stack.start({ persistence: true })
    await stack.waitLinkUp()
    // A persistent subscriber session, made while the cloud is up: after the restart it gets what
    // the gateway delivered before it reconnected (the gateway may drain first).
    const first = await MosquittoSub.start({
      ...stack.cloudClient(),
      qos: 1,
      topic: `${CLOUD_PREFIX}#`,
      extraArgs: SESSION,
    })
    await first.stop()
    await stack.cloud.stop()
  })

  afterAll(async () => {
    await sub?.stop()
    await stack?.stop()
  })

  it('sets the PUBLISH over the new Maximum Packet Size aside; the rest is delivered in order', async () => {
    const client = await connect(stack)
    const sent: Array<[string, string | Buffer]> = [
      [`${TOPIC}a`, 'before'],
      [`${TOPIC}big`, Buffer.alloc(MAX_PACKET, 7)],
      [`${TOPIC}c`, 'after'],
    ]
    for (const [topic, payload] of sent) expect(await publishOutcome(client, topic, payload)).toBe('acked')
    await client.endAsync()
    await appendFile(stack.cloud.configFile, `max_packet_size ${MAX_PACKET}\n`)
    await stack.cloud.restart()
    sub = await MosquittoSub.start({
      ...stack.cloudClient(),
      qos: 1,
      topic: `${CLOUD_PREFIX}#`,
      extraArgs: SESSION,
    })
    await stack.waitLinkUp()
    await waitUntil(() => stack.gateway.bridge.queue.size === 0, 15_000, 'queue drained')
    await sub.waitFor(2, 15_000)
    expect(sub.messages.map((m) => [m.topic, m.payload])).toEqual([
      [`${CLOUD_PREFIX}${PASSWORD_DEVICE.id}/a`, 'before'],
      [`${CLOUD_PREFIX}${PASSWORD_DEVICE.id}/c`, 'after'],
    ])
    expect(stack.gateway.metrics.get(UNSENDABLE)).toBe(1)
    const letters = await readDeadLetters(stack.gateway.bridge.deadLetters.dir)
    expect(letters.map((l) => [l.reason, l.topic, l.payloadBytes])).toEqual([
      ['unsendable', `${TOPIC}big`, MAX_PACKET],
    ])
    expect(letters[0]!.detail).toMatch(
      new RegExp(
        `^its PUBLISH would be \\d+ bytes, over the cloud broker's Maximum Packet Size of ${MAX_PACKET}$`,
      ),
    )
    const warned = stack.logs.records.filter((r) => r.reason === 'unsendable' && r.level === 40)
    expect(warned.map((r) => [r.seq, r.device])).toEqual(letters.map((l) => [l.seq, PASSWORD_DEVICE.id]))
    // Now that the limit is known, the LAN side refuses the same message before its PUBACK.
    const again = await connect(stack)
    expect(await publishOutcome(again, `${TOPIC}big`, Buffer.alloc(MAX_PACKET, 7))).toBe('closed')
    again.end(true)
    expect(stack.gateway.metrics.get(UNSENDABLE)).toBe(1)
  })

  it('a topic with text the cloud broker refuses never reaches the queue: a control character closes at the guard, a non-character is refused as unsendable', async () => {
    const received = sub.messages.length
    const disconnects = stack.gateway.metrics.get('cloud_disconnects_total')
    let client = await connect(stack)
    // U+0001: the LAN protocol guard closes the connection (MQTT 3.1.1 lets the receiver close on it).
    expect(await publishOutcome(client, `${TOPIC}x\u0001y`, 'control')).toBe('closed')
    client.end(true)
    client = await connect(stack)
    // U+FFFF passes the guard, but mosquitto would drop the cloud link on it: refused before the PUBACK.
    expect(await publishOutcome(client, `${TOPIC}\uffff`, 'non-character')).toBe('closed')
    client.end(true)
    client = await connect(stack)
    expect(await publishOutcome(client, `${TOPIC}d`, 'after them')).toBe('acked')
    await client.endAsync()
    await sub.waitFor(received + 1, 15_000)
    expect(sub.messages.slice(received).map((m) => m.payload)).toEqual(['after them'])
    expect(stack.logs.events('protocol_violation').at(-1)).toMatchObject({ reason: 'invalid_string' })
    expect(stack.logs.events('publish_denied').at(-1)).toMatchObject({
      reason: 'unsendable',
      detail: `its cloud topic cannot be sent: it holds the non-character U+FFFF at ${CLOUD_PREFIX.length + PASSWORD_DEVICE.id.length + 1}`,
    })
    expect(stack.gateway.metrics.get('cloud_disconnects_total')).toBe(disconnects)
  })
})
