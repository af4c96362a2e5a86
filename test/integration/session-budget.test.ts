import mqttPacket from 'mqtt-packet'
import { afterEach, describe, expect, it } from 'vitest'
import { collect, connectDevice, rawClient, sleep } from './clients.js'
import { PASSWORD_DEVICE, Stack, waitUntil } from './harness.js'

const login = { username: PASSWORD_DEVICE.username, password: PASSWORD_DEVICE.password, reconnectPeriod: 0 }
const base = `devices/${PASSWORD_DEVICE.id}`
const dropped = (reason: string) => `lan_session_dropped_total{reason="${reason}"}`

describe('session memory', () => {
  let stack: Stack | undefined
  afterEach(async () => {
    await stack?.stop()
    stack = undefined
  })

  it('queues at most maxPerClient messages for an offline persistent session, and maxBytes for all', async () => {
    stack = await Stack.start({ lan: { sessions: { maxPerClient: 5, maxBytes: 64 * 1024 } } })
    const port = stack.port('tcp')
    const away = async (clientId: string, filter: string) => {
      const c = await connectDevice(port, { ...login, clientId, clean: false })
      await c.subscribeAsync(filter, { qos: 1 })
      await c.endAsync()
    }
    await away(`${PASSWORD_DEVICE.id}-away`, `${base}/q/#`)
    const publisher = await connectDevice(port, { ...login, clientId: `${PASSWORD_DEVICE.id}-pub` })
    for (let i = 0; i < 20; i++) await publisher.publishAsync(`${base}/q/${i}`, `m-${i}`, { qos: 1 })
    expect(stack.gateway.metrics.get(dropped('per_client'))).toBe(15)

    // Back: it gets the 5 that were queued, the first 5.
    const back = await connectDevice(port, { ...login, clientId: `${PASSWORD_DEVICE.id}-away`, clean: false })
    const got = collect(back)
    await waitUntil(() => got.length === 5, 10_000, 'the queued messages')
    await sleep(300)
    expect(got.map((m) => m.payload)).toEqual(['m-0', 'm-1', 'm-2', 'm-3', 'm-4'])
    await back.endAsync()

    // All sessions together: 64 KiB. Four sessions away, 20 KB messages: the bytes run out first.
    for (let s = 0; s < 4; s++) await away(`${PASSWORD_DEVICE.id}-big-${s}`, `${base}/big/#`)
    const payload = Buffer.alloc(20_000, 0x62)
    for (let i = 0; i < 3; i++) await publisher.publishAsync(`${base}/big/${i}`, payload, { qos: 1 })
    expect(stack.gateway.metrics.get(dropped('memory'))).toBeGreaterThan(0)
    expect(stack.gateway.metrics.get('lan_session_bytes')).toBeLessThanOrEqual(64 * 1024)
    await publisher.endAsync()
  }, 60_000)

  it('gives the bytes back once a persistent QoS 2 subscriber completed each exchange (the PUBREL that replaces a message)', async () => {
    stack = await Stack.start({ lan: { sessions: { maxPerClient: 100, maxBytes: 64 * 1024 } } })
    const port = stack.port('tcp')
    const sub = await connectDevice(port, { ...login, clientId: `${PASSWORD_DEVICE.id}-q2sub`, clean: false })
    await sub.subscribeAsync(`${base}/two/#`, { qos: 2 })
    const got = collect(sub)
    const publisher = await connectDevice(port, { ...login, clientId: `${PASSWORD_DEVICE.id}-pub2` })
    for (let i = 0; i < 10; i++)
      await publisher.publishAsync(`${base}/two/${i}`, 'x'.repeat(1000), { qos: 2 })
    await waitUntil(() => got.length === 10, 10_000, 'the 10 messages')
    await waitUntil(
      () => stack!.gateway.metrics.get('lan_session_bytes') === 0,
      10_000,
      'the bytes given back',
    )
    await Promise.all([sub.endAsync(), publisher.endAsync()])
  }, 60_000)

  it('delivers live to a connected persistent subscriber a message the budget keeps out, without closing it', async () => {
    stack = await Stack.start({ lan: { sessions: { maxPerClient: 100, maxBytes: 64 * 1024 } } })
    const port = stack.port('tcp')
    // An offline session takes the whole byte budget.
    const away = await connectDevice(port, {
      ...login,
      clientId: `${PASSWORD_DEVICE.id}-away2`,
      clean: false,
    })
    await away.subscribeAsync(`${base}/fill/#`, { qos: 1 })
    await away.endAsync()
    const publisher = await connectDevice(port, { ...login, clientId: `${PASSWORD_DEVICE.id}-pub3` })
    for (let i = 0; i < 4; i++)
      await publisher.publishAsync(`${base}/fill/${i}`, Buffer.alloc(20_000, 1), { qos: 1 })
    expect(stack.gateway.metrics.get(dropped('memory'))).toBeGreaterThan(0)
    const online = await connectDevice(port, {
      ...login,
      clientId: `${PASSWORD_DEVICE.id}-online`,
      clean: false,
    })
    await online.subscribeAsync(`${base}/live`, { qos: 1 })
    let closed = false
    online.on('close', () => {
      closed = true
    })
    const got = collect(online)
    await publisher.publishAsync(`${base}/live`, Buffer.alloc(20_000, 2), { qos: 1 })
    await waitUntil(() => got.length === 1, 10_000, 'the live delivery')
    await sleep(300)
    expect(closed).toBe(false)
    await Promise.all([online.endAsync(), publisher.endAsync()])
  }, 60_000)

  it('stores at most maxPerClient QoS 2 messages awaiting their PUBREL, across reconnects; one more closes the connection', async () => {
    stack = await Stack.start({ lan: { sessions: { maxPerClient: 5, maxBytes: 64 * 1024 } } })
    const port = stack.port('tcp')
    // A raw client: QoS 2 PUBLISH packets, never a PUBREL.
    const round = async (first: number, count: number) => {
      const {
        socket,
        seen,
        closed: isClosed,
      } = await rawClient(port, {
        clientId: `${PASSWORD_DEVICE.id}-q2`,
        username: login.username,
        password: login.password,
        clean: false,
      })
      // One at a time: each waits for its PUBREC, or for the connection to close.
      for (let i = first; i < first + count && !isClosed(); i++) {
        const before = seen.filter((c) => c === 'pubrec').length
        socket.write(
          mqttPacket.generate({
            cmd: 'publish',
            qos: 2,
            messageId: i,
            topic: `${base}/q2`,
            payload: Buffer.from(`q2-${i}`),
            retain: false,
            dup: false,
          }),
        )
        await waitUntil(
          () => isClosed() || seen.filter((c) => c === 'pubrec').length > before,
          5_000,
          'PUBREC or the close',
        )
      }
      const pubrecs = seen.filter((c) => c === 'pubrec').length
      socket.destroy()
      return { pubrecs, closed: isClosed() }
    }
    expect(await round(1, 3)).toEqual({ pubrecs: 3, closed: false })
    await sleep(100)
    // The session keeps those 3: 2 more fit, the 3rd closes the connection.
    const second = await round(10, 3)
    expect(second.pubrecs).toBe(2)
    expect(second.closed).toBe(true)
    expect(stack.gateway.metrics.get(dropped('qos2_per_client'))).toBe(1)
  }, 60_000)
})
