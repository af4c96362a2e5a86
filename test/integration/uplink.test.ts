import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mosquittoPub } from '../helpers/mosquitto-clients.js'
import { MosquittoSub } from '../helpers/mosquitto-sub.js'
import { CLOUD_PREFIX, PASSWORD_DEVICE, PSK_DEVICE, Stack } from './harness.js'

describe('uplink: device to a real mosquitto cloud broker with require_certificate', () => {
  let stack: Stack
  let sub: MosquittoSub

  beforeAll(async () => {
    stack = await Stack.start()
    sub = await MosquittoSub.start({ ...stack.cloudClient(), topic: `${CLOUD_PREFIX}#`, qos: 1 })
    await stack.waitLinkUp()
  })

  afterAll(async () => {
    await sub?.stop()
    await stack?.stop()
  })

  it.each(['tlsv1.2', 'tlsv1.3'] as const)(
    'mosquitto_pub over TLS-PSK (%s) arrives mapped, same payload, QoS 1',
    async (tlsVersion) => {
      const payload = `reading over ${tlsVersion}: 21.5 C`
      const before = sub.messages.length
      const result = await mosquittoPub({
        host: '127.0.0.1',
        port: stack.port('tls-psk'),
        psk: { identity: PSK_DEVICE.identity, keyHex: PSK_DEVICE.keyHex },
        tlsVersion,
        clientId: `${PSK_DEVICE.id}-${tlsVersion}`,
        topic: `devices/${PSK_DEVICE.id}/telemetry`,
        message: payload,
        qos: 1,
      })
      expect(result).toMatchObject({ code: 0, timedOut: false })
      await sub.waitFor(before + 1, 10_000)
      expect(sub.messages.slice(before)).toEqual([
        { topic: `${CLOUD_PREFIX}${PSK_DEVICE.id}/telemetry`, qos: 1, payload },
      ])
    },
  )

  it('an mqtt.js device with username and password on the plain listener', async () => {
    const before = sub.messages.length
    const device = await mqtt.connectAsync({
      host: '127.0.0.1',
      port: stack.port('tcp'),
      clientId: PASSWORD_DEVICE.id,
      username: PASSWORD_DEVICE.username,
      password: PASSWORD_DEVICE.password,
      reconnectPeriod: 0,
    })
    const payload = Buffer.from([0x00, 0x01, 0xfe, 0xff, 0x42])
    await device.publishAsync(`devices/${PASSWORD_DEVICE.id}/state`, payload, { qos: 1 })
    await device.endAsync()
    await sub.waitFor(before + 1, 10_000)
    expect(
      sub.rawMessages.slice(before).map((m) => ({ ...m, payload: sub.envelopes[before]?.body })),
    ).toEqual([{ topic: `${CLOUD_PREFIX}${PASSWORD_DEVICE.id}/state`, qos: 1, payload }])
    expect(stack.gateway.metrics.get('uplink_delivered_total')).toBeGreaterThanOrEqual(1)
  })

  it('a device cannot publish outside its own prefix: the connection is closed and nothing reaches the cloud', async () => {
    const before = sub.messages.length
    const device = await mqtt.connectAsync({
      host: '127.0.0.1',
      port: stack.port('tcp'),
      clientId: PASSWORD_DEVICE.id,
      username: PASSWORD_DEVICE.username,
      password: PASSWORD_DEVICE.password,
      reconnectPeriod: 0,
    })
    const closed = new Promise<void>((resolve) => device.once('close', () => resolve()))
    device.publish(`devices/${PSK_DEVICE.id}/telemetry`, 'spoofed', { qos: 1 })
    await closed
    device.end(true)
    const event = await stack.logs.waitFor((r) => r.event === 'publish_denied')
    expect(event).toMatchObject({
      device: PASSWORD_DEVICE.id,
      topic: `devices/${PSK_DEVICE.id}/telemetry`,
      bytes: 7,
    })
    expect(JSON.stringify(event)).not.toContain('spoofed')
    // A marker from a permitted device proves the pipeline moved on without the spoofed message.
    await mosquittoPub({
      host: '127.0.0.1',
      port: stack.port('tls-psk'),
      psk: { identity: PSK_DEVICE.identity, keyHex: PSK_DEVICE.keyHex },
      clientId: PSK_DEVICE.id,
      topic: `devices/${PSK_DEVICE.id}/marker`,
      message: 'marker',
      qos: 1,
    })
    await sub.waitFor(before + 1, 10_000)
    expect(sub.messages.slice(before).map((m) => m.payload)).toEqual(['marker'])
  })
})
