/**
 * Messages the cloud broker will not take, with real mosquitto as the cloud (MQTT 5, mutual TLS):
 * - one it closes the connection on (over its `message_size_limit`: mosquitto answers a PUBACK with
 *   reason code 0x95, which the MQTT client cannot parse, and the link dies) does not wedge the
 *   uplink: after 3 sessions lost with it the oldest in flight, and one more with it alone, it is
 *   set aside as an `unsendable` dead letter, and the messages behind it are delivered;
 * - one it refuses with a reason code (its ACL denies the topic: 0x87) is kept as a `cloud_refused`
 *   dead letter, not dropped: its device had its PUBACK.
 * Nothing acknowledged is lost either way (docs/bridge.md).
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { MqttClient } from 'mqtt'
import { afterEach, describe, expect, it } from 'vitest'
import { MosquittoSub } from '../helpers/mosquitto-sub.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { connectDevice, publishOutcome } from './clients.js'
import { CLOUD_PREFIX, listLetters, PASSWORD_DEVICE, Stack, waitUntil } from './harness.js'

const device = (stack: Stack) =>
  connectDevice(stack.port('tcp'), {
    clientId: PASSWORD_DEVICE.id,
    username: PASSWORD_DEVICE.username,
    password: PASSWORD_DEVICE.password,
  })

describe('messages the cloud broker will not take', () => {
  let stack: Stack | undefined
  let sub: MosquittoSub | undefined
  let client: MqttClient | undefined
  let dir: string | undefined

  afterEach(async () => {
    await client?.endAsync().catch(() => undefined)
    await sub?.stop()
    await stack?.stop()
    if (dir) await removeDir(dir)
    stack = sub = client = dir = undefined
  })

  it('one it closes the connection on is set aside as unsendable, and the uplink goes on with the rest', async () => {
    stack = await Stack.start({ cloudConfig: ['message_size_limit 4000'] })
    await stack.waitLinkUp()
    sub = await MosquittoSub.start({ ...stack.cloudClient(), qos: 1, topic: `${CLOUD_PREFIX}#` })
    client = await device(stack)
    const base = `devices/${PASSWORD_DEVICE.id}`
    expect(await publishOutcome(client, `${base}/big`, 'x'.repeat(5000))).toBe('acked')
    for (let i = 0; i < 5; i++)
      expect(await publishOutcome(client, `${base}/small`, `small-${i}`)).toBe('acked')

    const unsendable = 'uplink_dead_letter_total{reason="unsendable"}'
    await waitUntil(() => stack!.gateway.metrics.get(unsendable) === 1, 60_000, 'the big message set aside')
    const received = await sub.waitFor(5, 30_000)
    expect(new Set(received.map((m) => m.topic))).toEqual(
      new Set([`${CLOUD_PREFIX}${PASSWORD_DEVICE.id}/small`]),
    )
    await waitUntil(() => stack!.gateway.bridge.queue.size === 0, 10_000, 'the queue empty')
    const letters = await listLetters(stack)
    expect(letters.map((l) => [l.reason, l.state, l.topic, l.payloadBytes])).toEqual([
      ['unsendable', 'held', `${base}/big`, 5000],
    ])
    expect(letters[0]!.detail).toMatch(
      /closed the connection each of the 4 times this message was in flight, the last time alone/,
    )
    // Four sessions lost to it, then the link stays up.
    const linkUps = stack.logs.records.filter((r) => r.msg === 'cloud link up').length
    expect(linkUps).toBeLessThanOrEqual(6)
  }, 120_000)

  it('one it refuses with a reason code (its ACL) is kept as a cloud_refused dead letter, not dropped', async () => {
    dir = await makeTempDir('edge-gw-cloud-acl-')
    const acl = join(dir, 'acl')
    await writeFile(acl, `pattern deny ${CLOUD_PREFIX}${PASSWORD_DEVICE.id}/secret/#\npattern readwrite #\n`)
    stack = await Stack.start({ cloudConfig: [`acl_file ${acl}`] })
    await stack.waitLinkUp()
    sub = await MosquittoSub.start({ ...stack.cloudClient(), qos: 1, topic: `${CLOUD_PREFIX}#` })
    client = await device(stack)
    const base = `devices/${PASSWORD_DEVICE.id}`
    expect(await publishOutcome(client, `${base}/secret/a`, 'refused-by-acl')).toBe('acked')
    expect(await publishOutcome(client, `${base}/open`, 'allowed')).toBe('acked')

    const refused = 'uplink_dead_letter_total{reason="cloud_refused"}'
    await waitUntil(() => stack!.gateway.metrics.get(refused) === 1, 30_000, 'the refused message kept')
    expect((await sub.waitFor(1, 10_000)).map((m) => m.payload)).toEqual(['allowed'])
    const letters = await listLetters(stack)
    expect(letters.map((l) => [l.reason, l.state, l.topic])).toEqual([
      ['cloud_refused', 'held', `${base}/secret/a`],
    ])
    expect(letters[0]!.detail).toBe('cloud broker refused the message (reason code 0x87)')
    expect(stack.gateway.bridge.queue.size).toBe(0)
  }, 60_000)
})
