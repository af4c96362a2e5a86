import { generateKeyPairSync } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { deriveContext } from '../../crypto/context.js'
import { open, seal } from '../../crypto/encrypt0.js'
import { macProtect } from '../../crypto/mac0.js'
import { sign1 } from '../../crypto/sign1.js'
import { makeToken } from '../../crypto/token.js'
import { Alg, type DerivedContext } from '../../crypto/types.js'
import { hashPassword } from '../../gateway/index.js'
import { writeSecretFile } from '../../pki/index.js'
import { MosquittoSub } from '../helpers/mosquitto-sub.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { connackCode, connectDevice, publishOutcome } from './clients.js'
import { CLOUD_PREFIX, Stack } from './harness.js'

const SECRET_A = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex')
const SECRET_B = Buffer.from('f0e0d0c0b0a090807060504030201000', 'hex')
const TOPIC = 'devices/meter-a/sealed/kwh'
const PASSWORD = 'meter-password'
const signing = generateKeyPairSync('ed25519')

describe('sealed and MAC-protected payloads from plain-TCP devices', () => {
  let stack: Stack
  let dir: string
  let sub: MosquittoSub
  let ctxA: DerivedContext
  let ctxB: DerivedContext
  let seq = 0
  const open_: MqttClient[] = []

  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-sealed-')
    await writeSecretFile(join(dir, 'a.key'), SECRET_A.toString('hex'))
    await writeSecretFile(join(dir, 'b.key'), SECRET_B.toString('hex'))
    await writeFile(join(dir, 'a-signing.pem'), signing.publicKey.export({ type: 'spki', format: 'pem' }))
    const passwordHash = await hashPassword(PASSWORD)
    stack = await Stack.start({
      devices: [
        {
          id: 'meter-a',
          username: 'meter-a',
          passwordHash,
          clientIds: ['meter-a*'],
          signingKeyFile: join(dir, 'a-signing.pem'),
          payloadKey: { kid: '0a', secretFile: join(dir, 'a.key') },
        },
        {
          id: 'meter-b',
          username: 'meter-b',
          passwordHash,
          payloadKey: { kid: '0b', secretFile: join(dir, 'b.key') },
        },
      ],
      protection: [
        { topic: 'devices/+/sealed/#', mode: 'sealed' },
        { topic: 'devices/+/mac/#', mode: 'mac' },
        { topic: 'devices/+/signed/#', mode: 'signed' },
      ],
      lan: { payload: { maxBytes: 256, failuresBeforeDisconnect: 1000 } },
    })
    ctxA = deriveContext({ kid: Buffer.from([0x0a]), masterSecret: SECRET_A, aead: Alg.AES_CCM_16_64_128 })
    ctxB = deriveContext({ kid: Buffer.from([0x0b]), masterSecret: SECRET_B, aead: Alg.AES_CCM_16_64_128 })
    sub = await MosquittoSub.start({ ...stack.cloudClient(), topic: `${CLOUD_PREFIX}#`, qos: 1 })
    await stack.waitLinkUp()
  })

  afterAll(async () => {
    await Promise.all(open_.map((c) => c.endAsync(true).catch(() => undefined)))
    await sub?.stop()
    await stack?.stop()
    await removeDir(dir)
  })

  async function meter(clientId = 'meter-a'): Promise<MqttClient> {
    const client = await connectDevice(stack.port('tcp'), {
      username: 'meter-a',
      password: PASSWORD,
      clientId,
    })
    open_.push(client)
    return client
  }

  const rejected = (reason: string) => stack.gateway.metrics.get(`payload_rejected_total{reason="${reason}"}`)

  it('a sealed reading arrives opened at the real mosquitto cloud broker', async () => {
    const client = await meter()
    const before = sub.messages.length
    expect(
      await publishOutcome(
        client,
        TOPIC,
        seal(ctxA, 'device-to-gateway', ++seq, Buffer.from('kwh=1234.5'), TOPIC),
      ),
    ).toBe('acked')
    await sub.waitFor(before + 1)
    expect(sub.messages.at(-1)).toEqual({
      topic: `${CLOUD_PREFIX}meter-a/sealed/kwh`,
      qos: 1,
      payload: 'kwh=1234.5',
    })
  })

  it('every kind of bad payload is dropped, counted and logged, and the next good one still goes through', async () => {
    const client = await meter()
    const good = (text: string) => seal(ctxA, 'device-to-gateway', ++seq, Buffer.from(text), TOPIC)
    const before = sub.messages.length
    const captured = good('captured')
    expect(await publishOutcome(client, TOPIC, captured)).toBe('acked')

    const cases: Array<[string, Buffer, string]> = []
    const original = good('to tamper')
    for (const position of [0, 2, 4, original.length - 12, original.length - 1]) {
      const tampered = Buffer.from(original)
      tampered[position] = tampered[position]! ^ 0x01
      cases.push([`tampered byte ${position}`, tampered, 'any'])
    }
    cases.push(['replayed', captured, 'replayed'])
    cases.push([
      'other device key',
      seal(ctxB, 'device-to-gateway', 1, Buffer.from('x'), TOPIC),
      'wrong_device',
    ])
    cases.push([
      'moved from another topic',
      seal(ctxA, 'device-to-gateway', ++seq, Buffer.from('x'), 'devices/meter-a/sealed/other'),
      'bad_tag',
    ])
    cases.push(['truncated', original.subarray(0, original.length - 3), 'any'])
    cases.push(['oversize', Buffer.concat([original, Buffer.alloc(300)]), 'oversize'])
    cases.push(['not CBOR at all', Buffer.from('plain text'), 'malformed'])

    const eventsBefore = stack.logs.events('payload_rejected').length
    for (const [name, bytes, reason] of cases) {
      // Acknowledged (the device must not resend garbage), then dropped.
      expect(await publishOutcome(client, TOPIC, bytes), name).toBe('acked')
      if (reason !== 'any')
        expect(
          rejected(reason),
          `${name}: ${JSON.stringify(stack.gateway.metrics.snapshot())}`,
        ).toBeGreaterThanOrEqual(1)
    }
    const events = stack.logs.events('payload_rejected').slice(eventsBefore)
    expect(events).toHaveLength(cases.length)
    for (const e of events) expect(e).toMatchObject({ device: 'meter-a', topic: TOPIC, mode: 'sealed' })
    expect(JSON.stringify(events)).not.toContain('to tamper')

    expect(await publishOutcome(client, TOPIC, good('after the storm'))).toBe('acked')
    await sub.waitFor(before + 2)
    expect(sub.messages.slice(before).map((m) => m.payload)).toEqual(['captured', 'after the storm'])
    expect(client.connected).toBe(true)
  })

  it('MAC-protected payloads: integrity checked, payload forwarded as sent', async () => {
    const client = await meter()
    const topic = 'devices/meter-a/mac/state'
    const before = sub.messages.length
    expect(
      await publishOutcome(
        client,
        topic,
        macProtect(ctxA, 'device-to-gateway', ++seq, Buffer.from('open'), topic),
      ),
    ).toBe('acked')
    const forged = macProtect(ctxA, 'device-to-gateway', ++seq, Buffer.from('shut'), topic)
    forged[forged.length - 20] = forged[forged.length - 20]! ^ 0xff
    expect(await publishOutcome(client, topic, forged)).toBe('acked')
    await sub.waitFor(before + 1)
    expect(sub.messages.slice(before).map((m) => m.payload)).toEqual(['open'])
  })

  it('signed payloads (COSE_Sign1, Ed25519): verified with the device key; a changed byte is refused', async () => {
    const client = await meter()
    const topic = 'devices/meter-a/signed/setpoint'
    const before = sub.messages.length
    const signed = sign1(
      signing.privateKey,
      Alg.EDDSA,
      Buffer.from([0x0a]),
      Buffer.from('21.5'),
      Buffer.from(topic),
    )
    expect(await publishOutcome(client, topic, signed)).toBe('acked')
    const forged = Buffer.from(signed)
    forged[forged.length - 70] = forged[forged.length - 70]! ^ 0x01
    expect(await publishOutcome(client, topic, forged)).toBe('acked')
    await sub.waitFor(before + 1)
    expect(sub.messages.slice(before).map((m) => m.payload)).toEqual(['21.5'])
    await stack.logs.waitFor((r) => r.event === 'payload_rejected' && r.mode === 'signed')
  })

  it('downlink on a sealed topic is sealed for the receiving device with the gateway-to-device key', async () => {
    const receiver = await meter('meter-a-receiver')
    await receiver.subscribeAsync('devices/meter-a/sealed/cmd', { qos: 1 })
    const sender = await meter('meter-a-sender')
    const topic = 'devices/meter-a/sealed/cmd'
    const delivered = new Promise<Buffer>((resolve) =>
      receiver.once('message', (_t, payload) => resolve(payload)),
    )
    expect(
      await publishOutcome(
        sender,
        topic,
        seal(ctxA, 'device-to-gateway', ++seq, Buffer.from('valve=shut'), topic),
      ),
    ).toBe('acked')
    const raw = await delivered
    expect(raw.toString()).not.toContain('valve')
    const opened = open(ctxA, 'gateway-to-device', raw, topic, 1024)
    expect('plaintext' in opened && opened.plaintext.toString()).toBe('valve=shut')
    // The device's own direction key does not open it: the directions are separate.
    expect('failure' in open(ctxA, 'device-to-gateway', raw, topic, 1024)).toBe(true)
  })

  it('the replay window survives a gateway restart', async () => {
    const client = await meter()
    const captured = seal(ctxA, 'device-to-gateway', ++seq, Buffer.from('before restart'), TOPIC)
    expect(await publishOutcome(client, TOPIC, captured)).toBe('acked')
    await client.endAsync()
    await stack.restartGateway()
    await stack.waitLinkUp()
    const after = await meter()
    expect(await publishOutcome(after, TOPIC, captured)).toBe('acked')
    await stack.logs.waitFor(
      (r) => r.event === 'payload_rejected' && r.reason === 'replayed' && r.clientId === 'meter-a',
    )
    expect(stack.gateway.metrics.get('payload_rejected_total{reason="replayed"}')).toBe(1)
  })

  it('one-time CONNECT tokens: fresh accepted, reused refused, outside the window refused, other client id refused', async () => {
    const now = Math.floor(Date.now() / 1000)
    const port = stack.port('tcp')
    const token = makeToken(ctxA, 'meter-a', now)
    expect(await connackCode(port, { username: 'meter-a', password: token, clientId: 'meter-a' })).toBe(0)
    expect(await connackCode(port, { username: 'meter-a', password: token, clientId: 'meter-a' })).toBe(4)
    await stack.logs.waitFor((r) => r.event === 'auth_bad_token' && String(r.msg).includes('replayed'))
    const stale = makeToken(ctxA, 'meter-a', now - 121)
    expect(await connackCode(port, { username: 'meter-a', password: stale, clientId: 'meter-a' })).toBe(4)
    await stack.logs.waitFor((r) => r.event === 'auth_bad_token' && String(r.msg).includes('expired'))
    const otherId = makeToken(ctxA, 'meter-a-2', now)
    expect(await connackCode(port, { username: 'meter-a', password: otherId, clientId: 'meter-a' })).toBe(4)
    const otherKey = makeToken(ctxB, 'meter-a', now)
    expect(await connackCode(port, { username: 'meter-a', password: otherKey, clientId: 'meter-a' })).toBe(4)
    expect(stack.gateway.metrics.get('security_events_total{event="auth_bad_token"}')).toBe(4)
  })

  it('a sealed Will is opened at CONNECT and published opened; one that fails to open refuses the CONNECT', async () => {
    const topic = 'devices/meter-a/sealed/status'
    const badWill = seal(ctxB, 'device-to-gateway', 5, Buffer.from('gone'), topic)
    expect(
      await connackCode(stack.port('tcp'), {
        username: 'meter-a',
        password: PASSWORD,
        clientId: 'meter-a',
        will: { topic, payload: badWill, qos: 1, retain: false },
      }),
    ).toBe(5)
    await stack.logs.waitFor((r) => r.event === 'will_rejected')
    const before = sub.messages.length
    const goodWill = seal(ctxA, 'device-to-gateway', ++seq, Buffer.from('meter-a went away'), topic)
    const client = await connectDevice(stack.port('tcp'), {
      username: 'meter-a',
      password: PASSWORD,
      clientId: 'meter-a',
      will: { topic, payload: goodWill, qos: 1, retain: false },
    })
    // An abrupt end (no DISCONNECT) fires the Will.
    ;(client as unknown as { stream: { destroy(): void } }).stream.destroy()
    await sub.waitFor(before + 1)
    expect(sub.messages.at(-1)).toEqual({
      topic: `${CLOUD_PREFIX}meter-a/sealed/status`,
      qos: 1,
      payload: 'meter-a went away',
    })
  })
})
