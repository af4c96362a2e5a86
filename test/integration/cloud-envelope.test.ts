import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ConsumedMessage, type ConsumeResult, EnvelopeConsumer } from '../../bridge/consumer.js'
import { operatorKid, signCommand } from '../../bridge/envelope.js'
import { deriveContext } from '../../crypto/context.js'
import { open } from '../../crypto/encrypt0.js'
import { generateHpkeKeyPair, type HpkeKeyPair, hpkeOpen, hpkeSeal } from '../../crypto/hpke.js'
import { Alg, type DerivedContext } from '../../crypto/types.js'
import { hashPassword } from '../../gateway/index.js'
import { writeSecretFile } from '../../pki/index.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { connectDevice, publishOutcome } from './clients.js'
import { CLOUD_PREFIX, GATEWAY_ID, PASSWORD_DEVICE, Stack, waitUntil } from './harness.js'

const RECIPIENT_KID = 'analytics'
const COMMANDS = `commands/${GATEWAY_ID}/`
const METER_SECRET = Buffer.from('00112233445566778899aabbccddeeff', 'hex')
const METER_PASSWORD = 'meter-password'

/** An MQTT 5 client on the cloud broker, with the lab client certificate (mutual TLS). */
async function connectCloud(stack: Stack, clientId: string): Promise<MqttClient> {
  const c = stack.cloudClient()
  return mqtt.connectAsync({
    protocol: 'mqtts',
    host: c.host,
    port: c.port,
    servername: 'localhost',
    ca: await readFile(c.caFile),
    cert: await readFile(c.certFile),
    key: await readFile(c.keyFile),
    rejectUnauthorized: true,
    protocolVersion: 5,
    clientId,
    reconnectPeriod: 0,
  })
}

/** A cloud service: an mTLS client on the cloud broker, feeding everything to an EnvelopeConsumer. */
class CloudService {
  readonly results: ConsumeResult[] = []
  readonly bindings: Array<{ ok: boolean; gatewayId?: string; failure?: string }> = []
  readonly raw: Array<{ topic: string; payload: Buffer }> = []
  private chain = Promise.resolve()

  private constructor(
    readonly client: MqttClient,
    readonly consumer: EnvelopeConsumer,
  ) {
    client.on('message', (topic, payload) => {
      this.raw.push({ topic, payload })
      this.chain = this.chain.then(async () => {
        if (topic.endsWith('/binding')) {
          const b = await this.consumer.binding(payload)
          this.bindings.push(b)
          this.results.push(...b.released)
        } else {
          this.results.push(await this.consumer.message(topic, payload))
        }
      })
    })
  }

  static async start(stack: Stack, recipient: HpkeKeyPair): Promise<CloudService> {
    const c = stack.cloudClient()
    const client = await connectCloud(stack, `cloud-service-${randomBytes(3).toString('hex')}`)
    const consumer = new EnvelopeConsumer(new X509Certificate(await readFile(c.caFile)), [
      { kid: Buffer.from(RECIPIENT_KID), privateKey: recipient.privateKey },
    ])
    const service = new CloudService(client, consumer)
    await client.subscribeAsync(['$gw/+/binding'], { qos: 1 })
    await client.subscribeAsync(['$gw/+/status', '$gw/+/health', 'gateways/#', 'e2e/#', 'sealed/#'], {
      qos: 1,
    })
    return service
  }

  messages(filter: (m: ConsumedMessage) => boolean = () => true): ConsumedMessage[] {
    return this.results.flatMap((r) => (r.ok === true && filter(r.message) ? [r.message] : []))
  }

  failures(): Array<{ failure: string; cloudTopic: string }> {
    return this.results.flatMap((r) =>
      r.ok === false ? [{ failure: r.failure, cloudTopic: r.cloudTopic }] : [],
    )
  }

  async settle(): Promise<void> {
    await this.chain
  }
}

describe('what the cloud receives: signed envelopes, sealed bodies, the control tree', () => {
  let stack: Stack
  let dir: string
  let recipient: HpkeKeyPair
  let cloud: CloudService
  let device: MqttClient

  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-envelope-')
    recipient = await generateHpkeKeyPair()
    await writeFile(join(dir, 'analytics.pub'), `${recipient.publicKey.toString('hex')}\n`)
    stack = await Stack.start({
      cloud: {
        topics: [
          { local: `devices/${PASSWORD_DEVICE.id}/e2e/`, cloud: 'e2e/', mode: 'end-to-end' },
          { local: `devices/${PASSWORD_DEVICE.id}/secret/`, cloud: 'sealed/', sealFor: 'analytics' },
          { local: 'devices/', cloud: CLOUD_PREFIX },
        ],
        recipients: [{ name: 'analytics', kid: RECIPIENT_KID, publicKeyFile: join(dir, 'analytics.pub') }],
        control: { intervalSeconds: 1 },
      },
    })
    await stack.waitLinkUp()
    cloud = await CloudService.start(stack, recipient)
    device = await connectDevice(stack.port('tcp'), {
      clientId: PASSWORD_DEVICE.id,
      username: PASSWORD_DEVICE.username,
      password: PASSWORD_DEVICE.password,
    })
  })

  afterAll(async () => {
    await device?.endAsync(true).catch(() => undefined)
    await cloud?.client.endAsync(true).catch(() => undefined)
    await stack?.stop()
    await removeDir(dir)
  })

  it('the retained key binding verifies against the CA and names the gateway; status is online, signed', async () => {
    await waitUntil(() => cloud.bindings.length > 0, 10_000, 'key binding received')
    expect(cloud.bindings[0]).toMatchObject({ ok: true, gatewayId: GATEWAY_ID })
    await waitUntil(() => cloud.messages((m) => m.kind === 'control' && m.topic === 'status').length > 0)
    const status = cloud.messages((m) => m.kind === 'control' && m.topic === 'status')[0]!
    expect(status.gatewayId).toBe(GATEWAY_ID)
    expect(JSON.parse(status.body.toString())).toEqual({ state: 'online' })
  })

  it('signed health messages report queue, link and certificate', async () => {
    await waitUntil(() => cloud.messages((m) => m.topic === 'health').length > 0, 10_000, 'health message')
    const health = JSON.parse(cloud.messages((m) => m.topic === 'health')[0]!.body.toString())
    expect(health.queue).toMatchObject({ depth: expect.any(Number), dropped: expect.any(Object) })
    expect(health.link.status).toBe('connected')
    expect(health.certificate.daysLeft).toBeGreaterThan(300)
  })

  it('every device message verifies, in order, with device, original topic and increasing gateway sequence numbers', async () => {
    const before = cloud.messages((m) => m.kind === 'message').length
    for (let i = 0; i < 50; i++) {
      await device.publishAsync(`devices/${PASSWORD_DEVICE.id}/temp`, `reading ${i}`, { qos: 1 })
    }
    await waitUntil(
      () => cloud.messages((m) => m.kind === 'message').length >= before + 50,
      15_000,
      '50 messages',
    )
    await cloud.settle()
    const got = cloud.messages((m) => m.kind === 'message').slice(before)
    expect(got.map((m) => m.body.toString())).toEqual(Array.from({ length: 50 }, (_, i) => `reading ${i}`))
    for (const m of got) {
      expect(m).toMatchObject({
        gatewayId: GATEWAY_ID,
        deviceId: PASSWORD_DEVICE.id,
        topic: `devices/${PASSWORD_DEVICE.id}/temp`,
        cloudTopic: `${CLOUD_PREFIX}${PASSWORD_DEVICE.id}/temp`,
        protection: 'plain',
        duplicate: false,
      })
      expect(Math.abs(Date.now() - m.timestamp)).toBeLessThan(120_000)
    }
    const seqs = got.map((m) => m.seq)
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs)
    expect(new Set(seqs).size).toBe(50)
    expect(cloud.failures()).toEqual([])
  })

  it('client-to-broker with sealFor: the cloud broker sees only HPKE ciphertext; the recipient opens it', async () => {
    const secret = 'door code 4711'
    const raw = cloud.raw.length
    await device.publishAsync(`devices/${PASSWORD_DEVICE.id}/secret/door`, secret, { qos: 1 })
    await waitUntil(() => cloud.messages((m) => m.protection === 'hpke').length > 0, 10_000, 'sealed message')
    const m = cloud.messages((x) => x.protection === 'hpke')[0]!
    expect(m.body.toString()).toBe(secret)
    expect(m.cloudTopic).toBe('sealed/door')
    const onWire = cloud.raw.slice(raw).find((r) => r.topic === 'sealed/door')!
    expect(onWire.payload.includes(Buffer.from(secret))).toBe(false)
  })

  it('end-to-end: the device seals for the cloud; the gateway forwards its bytes unchanged inside the signed envelope', async () => {
    const topic = `devices/${PASSWORD_DEVICE.id}/e2e/valve`
    const sealed = await hpkeSeal(
      { kid: Buffer.from(RECIPIENT_KID), publicKey: recipient.publicKey },
      Buffer.from('open valve 3'),
      topic,
    )
    await device.publishAsync(topic, sealed, { qos: 1 })
    await waitUntil(() => cloud.messages((m) => m.protection === 'device').length > 0, 10_000, 'e2e message')
    const m = cloud.messages((x) => x.protection === 'device')[0]!
    expect(m.body.equals(sealed)).toBe(true)
    expect(m.topic).toBe(topic)
    const opened = await hpkeOpen(
      { kid: Buffer.from(RECIPIENT_KID), privateKey: recipient.privateKey },
      m.body,
      m.topic,
      4096,
    )
    expect('plaintext' in opened && opened.plaintext.toString()).toBe('open valve 3')
  })

  it('a message altered on the cloud broker (one byte changed, or moved to another topic) fails verification', async () => {
    await cloud.settle()
    const original = cloud.raw.find((r) => r.topic.startsWith(CLOUD_PREFIX))!
    const publisher = cloud.client
    const before = cloud.failures().length
    // One byte flipped near the end (the signature), in the middle (the body), and the topic changed.
    const tampered = [original.payload.length - 3, Math.floor(original.payload.length / 2)].map((i) => {
      const copy = Buffer.from(original.payload)
      copy[i] = copy[i]! ^ 0x01
      return copy
    })
    for (const t of tampered) await publisher.publishAsync(original.topic, t, { qos: 1 })
    await publisher.publishAsync(`${CLOUD_PREFIX}${PASSWORD_DEVICE.id}/elsewhere`, original.payload, {
      qos: 1,
    })
    await waitUntil(() => cloud.failures().length >= before + 3, 10_000, 'three refusals')
    const failures = cloud.failures().slice(before)
    expect(failures.map((f) => f.failure)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^(bad_signature|malformed)$/)]),
    )
    expect(failures).toHaveLength(3)
    for (const f of failures) expect(['bad_signature', 'malformed']).toContain(f.failure)
  })

  it('the same message delivered twice is flagged as a duplicate by its gateway sequence number', async () => {
    await cloud.settle()
    const original = cloud.raw.find((r) => r.topic.startsWith(CLOUD_PREFIX))!
    const before = cloud.results.length
    await cloud.client.publishAsync(original.topic, original.payload, { qos: 1 })
    await waitUntil(() => cloud.results.length > before, 10_000, 'the copy')
    const copy = cloud.results[before]!
    expect(copy.ok === true && copy.message.duplicate).toBe(true)
  })

  it('when the link is lost, the broker publishes the signed Will: offline; the gateway comes back online', async () => {
    const statuses = () =>
      cloud
        .messages((m) => m.topic === 'status')
        .map((m) => JSON.parse(m.body.toString()) as { state: string; reason?: string })
    const link = stack.gateway.bridge.link as unknown as { client: { stream: { destroy: () => void } } }
    link.client.stream.destroy()
    await waitUntil(() => statuses().some((s) => s.state === 'offline'), 20_000, 'offline Will')
    expect(statuses().find((s) => s.state === 'offline')).toEqual({
      state: 'offline',
      reason: 'connection lost',
    })
    const offlineAt = statuses().findIndex((s) => s.state === 'offline')
    await waitUntil(
      () =>
        statuses()
          .slice(offlineAt)
          .some((s) => s.state === 'online'),
      20_000,
      'online again',
    )
  })

  it('a LAN device cannot publish into the control tree', async () => {
    const intruder = await connectDevice(stack.port('tcp'), {
      clientId: `${PASSWORD_DEVICE.id}-intruder`,
      username: PASSWORD_DEVICE.username,
      password: PASSWORD_DEVICE.password,
      reconnectPeriod: 0,
    })
    // Denied publishes disconnect by default.
    expect(await publishOutcome(intruder, `$gw/${GATEWAY_ID}/status`, 'fake online')).toBe('closed')
    await intruder.endAsync(true).catch(() => undefined)
    await new Promise((r) => setTimeout(r, 300))
    await cloud.settle()
    expect(cloud.raw.some((r) => r.payload.equals(Buffer.from('fake online')))).toBe(false)
    expect(stack.logs.events('publish_denied').some((e) => String(e.topic).startsWith('$gw/'))).toBe(true)
  })
})

describe('downlink commands from the cloud', () => {
  let stack: Stack
  let dir: string
  const operator = generateKeyPairSync('ed25519')
  const stranger = generateKeyPairSync('ed25519')
  let meterCtx: DerivedContext
  let cloudClient: MqttClient
  let plainDevice: MqttClient
  let meter: MqttClient
  const plainReceived: Array<{ topic: string; payload: Buffer }> = []
  const meterReceived: Array<{ topic: string; payload: Buffer }> = []

  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-downlink-')
    await writeFile(join(dir, 'ops.pub'), operator.publicKey.export({ type: 'spki', format: 'pem' }))
    await writeSecretFile(join(dir, 'meter.key'), METER_SECRET.toString('hex'))
    stack = await Stack.start({
      devices: [
        {
          id: 'meter',
          username: 'meter',
          passwordHash: await hashPassword(METER_PASSWORD),
          clientIds: ['meter*'],
          payloadKey: { kid: '0c', secretFile: join(dir, 'meter.key') },
        },
      ],
      protection: [{ topic: 'devices/meter/cmd/#', mode: 'sealed' }],
      cloud: {
        downlink: {
          topics: [{ cloud: COMMANDS, local: 'devices/' }],
          operators: [{ name: 'ops', publicKeyFile: join(dir, 'ops.pub') }],
          maxAgeSeconds: 30,
        },
      },
    })
    await stack.waitLinkUp()
    meterCtx = deriveContext({
      kid: Buffer.from([0x0c]),
      masterSecret: METER_SECRET,
      aead: Alg.AES_CCM_16_64_128,
    })
    cloudClient = await connectCloud(stack, 'operator-console')
    plainDevice = await connectDevice(stack.port('tcp'), {
      clientId: PASSWORD_DEVICE.id,
      username: PASSWORD_DEVICE.username,
      password: PASSWORD_DEVICE.password,
    })
    plainDevice.on('message', (topic, payload) => plainReceived.push({ topic, payload }))
    await plainDevice.subscribeAsync(`devices/${PASSWORD_DEVICE.id}/cmd/#`, { qos: 1 })
    meter = await connectDevice(stack.port('tcp'), {
      clientId: 'meter',
      username: 'meter',
      password: METER_PASSWORD,
    })
    meter.on('message', (topic, payload) => meterReceived.push({ topic, payload }))
    await meter.subscribeAsync('devices/meter/cmd/#', { qos: 1 })
    // The gateway subscribes when its link comes up; give the SUBACK a moment to land.
    await new Promise((r) => setTimeout(r, 300))
  })

  afterAll(async () => {
    await Promise.all([plainDevice, meter, cloudClient].map((c) => c?.endAsync(true).catch(() => undefined)))
    await stack?.stop()
    await removeDir(dir)
  })

  function command(opts: {
    device: string
    topic: string
    body: string
    key?: typeof operator.privateKey
    timestamp?: number
    nonce?: Buffer
    gatewayId?: string
  }): Buffer {
    const key = opts.key ?? operator.privateKey
    return signCommand(key, operatorKid(key), opts.topic, {
      gatewayId: opts.gatewayId ?? GATEWAY_ID,
      deviceId: opts.device,
      nonce: opts.nonce ?? randomBytes(16),
      timestamp: opts.timestamp ?? Date.now(),
      body: Buffer.from(opts.body),
    })
  }

  async function refusedWith(reason: string, send: () => Promise<unknown>): Promise<void> {
    const before = stack.logs.events('command_rejected').filter((e) => e.reason === reason).length
    await send()
    await stack.logs.waitFor(
      () => stack.logs.events('command_rejected').filter((e) => e.reason === reason).length > before,
      10_000,
    )
  }

  it('a signed, fresh command reaches the device', async () => {
    const topic = `${COMMANDS}${PASSWORD_DEVICE.id}/cmd/reboot`
    await cloudClient.publishAsync(
      topic,
      command({ device: PASSWORD_DEVICE.id, topic, body: 'reboot now' }),
      { qos: 1 },
    )
    await waitUntil(() => plainReceived.length > 0, 10_000, 'command delivered')
    expect(plainReceived.map((m) => [m.topic, m.payload.toString()])).toEqual([
      [`devices/${PASSWORD_DEVICE.id}/cmd/reboot`, 'reboot now'],
    ])
    expect(stack.gateway.metrics.get('downlink_delivered_total')).toBe(1)
  })

  it('on a sealed topic the command arrives sealed with the device key, and opens', async () => {
    const topic = `${COMMANDS}meter/cmd/tariff`
    await cloudClient.publishAsync(topic, command({ device: 'meter', topic, body: 'tariff B' }), { qos: 1 })
    await waitUntil(() => meterReceived.length > 0, 10_000, 'sealed command delivered')
    const got = meterReceived[0]!
    expect(got.topic).toBe('devices/meter/cmd/tariff')
    expect(got.payload.includes(Buffer.from('tariff B'))).toBe(false)
    const opened = open(meterCtx, 'gateway-to-device', got.payload, got.topic, 1024)
    expect('plaintext' in opened && opened.plaintext.toString()).toBe('tariff B')
  })

  it('unsigned, unknown-key, tampered, replayed, stale, misaddressed and out-of-policy commands never reach a device; each is reported', async () => {
    const topic = `${COMMANDS}${PASSWORD_DEVICE.id}/cmd/unlock`
    const delivered = plainReceived.length
    await refusedWith('malformed', () => cloudClient.publishAsync(topic, 'unlock', { qos: 1 }))
    await refusedWith('unknown_kid', () =>
      cloudClient.publishAsync(
        topic,
        command({ device: PASSWORD_DEVICE.id, topic, body: 'unlock', key: stranger.privateKey }),
        {
          qos: 1,
        },
      ),
    )
    const good = command({ device: PASSWORD_DEVICE.id, topic, body: 'unlock' })
    const tampered = Buffer.from(good)
    tampered[tampered.length - 1] = tampered[tampered.length - 1]! ^ 0x80
    await refusedWith('bad_signature', () => cloudClient.publishAsync(topic, tampered, { qos: 1 }))
    // Signed for another topic, published on this one.
    await refusedWith('bad_signature', () =>
      cloudClient.publishAsync(
        topic,
        command({ device: PASSWORD_DEVICE.id, topic: `${topic}-other`, body: 'unlock' }),
        { qos: 1 },
      ),
    )
    await refusedWith('stale', () =>
      cloudClient.publishAsync(
        topic,
        command({ device: PASSWORD_DEVICE.id, topic, body: 'unlock', timestamp: Date.now() - 120_000 }),
        {
          qos: 1,
        },
      ),
    )
    await refusedWith('wrong_gateway', () =>
      cloudClient.publishAsync(
        topic,
        command({ device: PASSWORD_DEVICE.id, topic, body: 'unlock', gatewayId: 'gw-other' }),
        { qos: 1 },
      ),
    )
    // Addressed to a device the policy does not let read that topic (pass-dev's topics are not meter's).
    const foreign = `${COMMANDS}${PASSWORD_DEVICE.id}/cmd/x`
    await refusedWith('policy', () =>
      cloudClient.publishAsync(foreign, command({ device: 'meter', topic: foreign, body: 'unlock' }), {
        qos: 1,
      }),
    )
    // The good one is delivered once; the same bytes again are a replay.
    await cloudClient.publishAsync(topic, good, { qos: 1 })
    await waitUntil(() => plainReceived.length === delivered + 1, 10_000, 'the good command')
    await refusedWith('replayed', () => cloudClient.publishAsync(topic, good, { qos: 1 }))
    await new Promise((r) => setTimeout(r, 300))
    expect(plainReceived.slice(delivered).map((m) => m.payload.toString())).toEqual(['unlock'])
    const reasons = stack.logs.events('command_rejected').map((e) => e.reason)
    for (const r of [
      'malformed',
      'unknown_kid',
      'bad_signature',
      'stale',
      'wrong_gateway',
      'policy',
      'replayed',
    ]) {
      expect(reasons).toContain(r)
    }
  })

  it('a replay after a gateway restart is still refused (nonces are kept on disk)', async () => {
    const topic = `${COMMANDS}${PASSWORD_DEVICE.id}/cmd/restart-test`
    const once = command({ device: PASSWORD_DEVICE.id, topic, body: 'once' })
    const delivered = plainReceived.length
    await cloudClient.publishAsync(topic, once, { qos: 1 })
    await waitUntil(() => plainReceived.length === delivered + 1, 10_000, 'first delivery')
    await stack.restartGateway()
    await stack.waitLinkUp()
    // The device comes back after the restart and listens again.
    const after: Array<{ topic: string; payload: string }> = []
    const again = await connectDevice(stack.port('tcp'), {
      clientId: `${PASSWORD_DEVICE.id}-again`,
      username: PASSWORD_DEVICE.username,
      password: PASSWORD_DEVICE.password,
    })
    again.on('message', (t, payload) => after.push({ topic: t, payload: payload.toString() }))
    await again.subscribeAsync(`devices/${PASSWORD_DEVICE.id}/cmd/#`, { qos: 1 })
    await new Promise((r) => setTimeout(r, 300))
    await refusedWith('replayed', () => cloudClient.publishAsync(topic, once, { qos: 1 }))
    // A fresh command sent after the replay, on the same path: once it has arrived, the replay
    // (sent before it, in order) would have arrived too. The device got the fresh one alone.
    const fresh = command({ device: PASSWORD_DEVICE.id, topic, body: 'fresh' })
    await cloudClient.publishAsync(topic, fresh, { qos: 1 })
    await waitUntil(() => after.length > 0, 10_000, 'the fresh command after the replay')
    await new Promise((r) => setTimeout(r, 300))
    expect(after).toEqual([{ topic: `devices/${PASSWORD_DEVICE.id}/cmd/restart-test`, payload: 'fresh' }])
    await again.endAsync()
  })
})
