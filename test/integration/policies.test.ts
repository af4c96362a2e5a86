import type { MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ConfigInput } from '../../config/index.js'
import { hashPassword } from '../../gateway/index.js'
import {
  collect,
  connackCode,
  connectDevice,
  publishOutcome,
  rawConnack,
  sleep,
  subscribeGranted,
} from './clients.js'
import { Stack, waitUntil } from './harness.js'

const PASSWORD = 'policy-test-password'

const policies: ConfigInput['policies'] = {
  floodDisconnectAfter: 5,
  rules: [
    { name: 'own', who: 'everyone', topic: 'devices/%d/#', action: 'both' },
    { name: 'secret', who: 'everyone', topic: 'devices/+/secret', action: 'both', effect: 'deny' },
    { name: 'qos-capped', who: { group: 'sensors' }, topic: 'telemetry/%u/qos', action: 'both', maxQos: 0 },
    {
      name: 'no-retain',
      who: { group: 'sensors' },
      topic: 'telemetry/%u/state',
      action: 'publish',
      retain: false,
    },
    {
      name: 'small',
      who: { group: 'sensors' },
      topic: 'telemetry/%u/small',
      action: 'publish',
      maxPayloadBytes: 16,
    },
    {
      name: 'slow',
      who: { username: 'sensor-a' },
      topic: 'telemetry/sensor-a/rate',
      action: 'publish',
      rate: { messages: { perSecond: 0.5, burst: 3 } },
    },
    {
      name: 'thin',
      who: { username: 'sensor-a' },
      topic: 'telemetry/sensor-a/bytes',
      action: 'publish',
      rate: { bytes: { perSecond: 1, burst: 100 } },
    },
    { name: 'b-only', who: { device: 'sensor-b' }, topic: 'shared/b-only', action: 'both' },
    { name: 'inbox', who: 'everyone', topic: 'inbox/%c', action: 'subscribe' },
    { name: 'broadcast-read', who: 'everyone', topic: 'broadcast/#', action: 'subscribe', maxSubscribers: 2 },
    { name: 'console-write', who: { clientId: 'ops-console' }, topic: 'broadcast/#', action: 'publish' },
    { name: 'sensors-read-all', who: { group: 'sensors' }, topic: '#', action: 'subscribe' },
    { name: 'ops-sys', who: { username: 'ops' }, topic: '$SYS/#', action: 'subscribe' },
  ],
}

describe('topic policies through real client connections', () => {
  let stack: Stack
  const open: MqttClient[] = []

  beforeAll(async () => {
    const passwordHash = await hashPassword(PASSWORD)
    stack = await Stack.start({
      policies,
      devices: [
        { id: 'sensor-a', username: 'sensor-a', passwordHash, groups: ['sensors'], clientIds: ['sensor-a*'] },
        { id: 'sensor-b', username: 'sensor-b', passwordHash, groups: ['sensors'], clientIds: ['sensor-b*'] },
        { id: 'ops', username: 'ops', passwordHash, clientIds: ['ops-*'] },
      ],
    })
  })

  afterAll(async () => {
    await Promise.all(open.map((c) => c.endAsync(true).catch(() => undefined)))
    await stack?.stop()
  })

  async function device(
    username: string,
    clientId = username,
    extra: Record<string, unknown> = {},
  ): Promise<MqttClient> {
    const client = await connectDevice(stack.port('tcp'), {
      username,
      password: PASSWORD,
      clientId,
      ...extra,
    })
    open.push(client)
    return client
  }

  it('who=everyone with %d: a device publishes under its own id, not under another', async () => {
    expect(await publishOutcome(await device('sensor-a'), 'devices/sensor-a/t', 'x')).toBe('acked')
    expect(await publishOutcome(await device('sensor-a'), 'devices/sensor-b/t', 'x')).toBe('closed')
  })

  it('a deny rule wins over an allow rule', async () => {
    expect(await publishOutcome(await device('sensor-a'), 'devices/sensor-a/secret', 'x')).toBe('closed')
    const event = await stack.logs.waitFor(
      (r) => r.event === 'publish_denied' && r.topic === 'devices/sensor-a/secret',
    )
    expect(event).toMatchObject({ device: 'sensor-a', reason: 'deny_rule', rule: 'secret', bytes: 1 })
  })

  it('a topic or filter over maxTopicBytes (1,024) is denied, and logged cut short', async () => {
    const long = `devices/sensor-a/${'x'.repeat(2000)}`
    expect(await subscribeGranted(await device('sensor-a'), { [`${long}/#`]: { qos: 0 } })).toEqual([128])
    const subscribeEvent = await stack.logs.waitFor(
      (r) => r.event === 'subscribe_denied' && r.reason === 'topic_too_long',
    )
    expect(subscribeEvent).toMatchObject({
      device: 'sensor-a',
      topic: `${long.slice(0, 256)}... (2019 characters)`,
    })
    expect(await publishOutcome(await device('sensor-a'), long, 'x')).toBe('closed')
    const publishEvent = await stack.logs.waitFor(
      (r) => r.event === 'publish_denied' && r.reason === 'topic_too_long',
    )
    expect(String(publishEvent.topic)).toHaveLength(256 + ' (2017 characters)'.length + 3)
  })

  it('who=device: only the named device', async () => {
    expect(await publishOutcome(await device('sensor-b'), 'shared/b-only', 'x')).toBe('acked')
    expect(await publishOutcome(await device('sensor-a'), 'shared/b-only', 'x')).toBe('closed')
  })

  it('who=clientId: the console client id may publish broadcasts, the same device with another client id may not', async () => {
    expect(await publishOutcome(await device('ops', 'ops-console'), 'broadcast/all', 'x')).toBe('acked')
    expect(await publishOutcome(await device('ops', 'ops-other'), 'broadcast/all', 'x')).toBe('closed')
  })

  it('who=group with %u: sensors subscribe to their own QoS-capped topic, ops (not in the group) cannot', async () => {
    expect(
      await subscribeGranted(await device('sensor-a'), { 'telemetry/sensor-a/qos': { qos: 0 } }),
    ).toEqual([0])
    expect(await subscribeGranted(await device('ops', 'ops-1'), { 'telemetry/ops/qos': { qos: 0 } })).toEqual(
      [128],
    )
  })

  it('%c: a client reads only the inbox named by its own client id', async () => {
    const client = await device('ops', 'ops-7')
    expect(await subscribeGranted(client, { 'inbox/ops-7': { qos: 1 }, 'inbox/ops-8': { qos: 1 } })).toEqual([
      1, 128,
    ])
  })

  it('action: a publish-only rule does not allow subscribing, a subscribe-only rule does not allow publishing', async () => {
    expect(await subscribeGranted(await device('ops', 'ops-2'), { 'broadcast/x': { qos: 0 } })).toEqual([0])
    expect(await publishOutcome(await device('ops', 'ops-3'), 'inbox/ops-3', 'x')).toBe('closed')
    // no-retain is publish-only: ops is not in sensors; sensor-b reads it through sensors-read-all, not through no-retain.
    expect(
      await subscribeGranted(await device('ops', 'ops-4'), { 'telemetry/sensor-a/state': { qos: 0 } }),
    ).toEqual([128])
  })

  it('maxQos: a PUBLISH above the cap is refused, a SUBSCRIBE above it is granted at the cap', async () => {
    expect(await publishOutcome(await device('sensor-a'), 'telemetry/sensor-a/qos', 'x', { qos: 0 })).toBe(
      'acked',
    )
    expect(await publishOutcome(await device('sensor-a'), 'telemetry/sensor-a/qos', 'x', { qos: 1 })).toBe(
      'closed',
    )
    expect(
      await subscribeGranted(await device('sensor-a'), { 'telemetry/sensor-a/qos': { qos: 1 } }),
    ).toEqual([0])
    await stack.logs.waitFor((r) => r.event === 'publish_denied' && r.reason === 'qos')
  })

  it('retain: forbidden where the rule says so', async () => {
    expect(
      await publishOutcome(await device('sensor-a'), 'telemetry/sensor-a/state', 'x', { retain: false }),
    ).toBe('acked')
    expect(
      await publishOutcome(await device('sensor-a'), 'telemetry/sensor-a/state', 'x', { retain: true }),
    ).toBe('closed')
    await stack.logs.waitFor((r) => r.event === 'publish_denied' && r.reason === 'retain')
  })

  it('payload size limit', async () => {
    expect(await publishOutcome(await device('sensor-a'), 'telemetry/sensor-a/small', 'x'.repeat(16))).toBe(
      'acked',
    )
    expect(await publishOutcome(await device('sensor-a'), 'telemetry/sensor-a/small', 'x'.repeat(17))).toBe(
      'closed',
    )
    await stack.logs.waitFor((r) => r.event === 'publish_denied' && r.reason === 'size' && r.bytes === 17)
  })

  it('message rate: past the burst messages are dropped and counted; a device that keeps flooding is disconnected', async () => {
    const reader = await device('sensor-b', 'sensor-b-reader')
    const got = collect(reader)
    await subscribeGranted(reader, { 'telemetry/sensor-a/rate': { qos: 1 } })
    const client = await device('sensor-a', 'sensor-a-rate')
    const outcomes: string[] = []
    for (let i = 0; i < 5; i++)
      outcomes.push(await publishOutcome(client, 'telemetry/sensor-a/rate', `r${i}`))
    // Over the limit a QoS 1 message is acknowledged (the device must not resend it) and dropped.
    expect(outcomes).toEqual(['acked', 'acked', 'acked', 'acked', 'acked'])
    await waitUntil(() => got.length >= 3, 5000, 'three messages at the reader')
    await sleep(200)
    expect(got.map((m) => m.payload)).toEqual(['r0', 'r1', 'r2'])
    expect(stack.logs.events('rate_limited').filter((r) => r.clientId === 'sensor-a-rate')).toHaveLength(2)
    const more: string[] = []
    for (let i = 0; i < 10 && more.at(-1) !== 'closed'; i++) {
      more.push(await publishOutcome(client, 'telemetry/sensor-a/rate', `f${i}`))
    }
    expect(more.at(-1)).toBe('closed')
    await stack.logs.waitFor((r) => r.event === 'flood_disconnect' && r.clientId === 'sensor-a-rate')
  })

  it('byte rate: a burst of bytes passes, the next large message is dropped', async () => {
    const client = await device('sensor-a', 'sensor-a-bytes')
    expect(await publishOutcome(client, 'telemetry/sensor-a/bytes', 'b'.repeat(90))).toBe('acked')
    expect(await publishOutcome(client, 'telemetry/sensor-a/bytes', 'b'.repeat(50))).toBe('acked')
    const event = await stack.logs.waitFor(
      (r) => r.event === 'rate_limited' && r.clientId === 'sensor-a-bytes',
    )
    expect(event).toMatchObject({ limit: 'bytes', rule: 'thin', bytes: 50 })
  })

  it('one SUBSCRIBE with an allowed and a forbidden filter: 0x80 for the forbidden one only', async () => {
    const client = await device('ops', 'ops-5')
    expect(await subscribeGranted(client, { 'broadcast/news': { qos: 1 }, 'factory/#': { qos: 1 } })).toEqual(
      [1, 128],
    )
    const event = await stack.logs.waitFor((r) => r.event === 'subscribe_denied' && r.clientId === 'ops-5')
    expect(event).toMatchObject({ device: 'ops', topic: 'factory/#', reason: 'no_rule' })
  })

  it('subscriber limit: with 2 allowed, the third subscriber gets 0x80, and a slot frees when one leaves', async () => {
    const first = await device('ops', 'ops-sub-1')
    const second = await device('ops', 'ops-sub-2')
    const third = await device('ops', 'ops-sub-3')
    expect(await subscribeGranted(first, { 'broadcast/limited': { qos: 0 } })).toEqual([0])
    expect(await subscribeGranted(second, { 'broadcast/limited': { qos: 0 } })).toEqual([0])
    expect(await subscribeGranted(third, { 'broadcast/limited': { qos: 0 } })).toEqual([128])
    await stack.logs.waitFor((r) => r.event === 'subscriber_limit' && r.clientId === 'ops-sub-3')
    await first.endAsync()
    await waitUntil(
      () => !stack.gateway.lan.clients().some((c) => c.id === 'ops-sub-1'),
      5000,
      'first subscriber gone',
    )
    expect(await subscribeGranted(third, { 'broadcast/limited': { qos: 0 } })).toEqual([0])
  })

  it('$ topics match only $ rules: "#" does not reach $SYS, an explicit $SYS rule does', async () => {
    expect(await subscribeGranted(await device('sensor-a'), { '$SYS/broker/uptime': { qos: 0 } })).toEqual([
      128,
    ])
    expect(
      await subscribeGranted(await device('ops', 'ops-6'), { '$SYS/broker/uptime': { qos: 0 } }),
    ).toEqual([0])
  })

  it('a Will on a forbidden topic refuses the CONNECT with CONNACK 5; an allowed Will connects', async () => {
    const will = (topic: string) => ({
      will: { topic, payload: Buffer.from('gone'), qos: 1 as const, retain: false },
    })
    const refused = await connackCode(stack.port('tcp'), {
      username: 'sensor-a',
      password: PASSWORD,
      clientId: 'sensor-a-will',
      ...will('devices/sensor-b/status'),
    })
    expect(refused).toBe(5)
    const event = await stack.logs.waitFor((r) => r.event === 'will_denied')
    expect(event).toMatchObject({ device: 'sensor-a', topic: 'devices/sensor-b/status', returnCode: 5 })
    const accepted = await connackCode(stack.port('tcp'), {
      username: 'sensor-a',
      password: PASSWORD,
      clientId: 'sensor-a-will',
      ...will('devices/sensor-a/status'),
    })
    expect(accepted).toBe(0)
  })

  it('an empty client id with CleanSession=0 gets CONNACK 2; with CleanSession=1 it is accepted', async () => {
    const creds = { username: 'sensor-a', password: Buffer.from(PASSWORD) }
    expect(await rawConnack(stack.port('tcp'), { clientId: '', clean: false, ...creds })).toBe(2)
    const event = await stack.logs.waitFor(
      (r) =>
        r.event === 'client_id_refused' &&
        String(r.msg).includes('empty client id with a persistent session'),
    )
    expect(event).toMatchObject({ username: 'sensor-a', returnCode: 2 })
    expect(await rawConnack(stack.port('tcp'), { clientId: '', clean: true, ...creds })).toBe(0)
  })

  it('a client id with "/" or "+" is refused with CONNACK 2 even when a pattern would match it', async () => {
    expect(
      await rawConnack(stack.port('tcp'), {
        clientId: 'sensor-a/x',
        username: 'sensor-a',
        password: Buffer.from(PASSWORD),
      }),
    ).toBe(2)
    expect(
      await rawConnack(stack.port('tcp'), {
        clientId: 'sensor-a+',
        username: 'sensor-a',
        password: Buffer.from(PASSWORD),
      }),
    ).toBe(2)
  })
})
