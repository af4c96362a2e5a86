import { connect as connectNet } from 'node:net'
import { join } from 'node:path'
import mqttPacket from 'mqtt-packet'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { stringify } from 'yaml'
import { type GatewayConfig, parseConfig } from '../../../config/index.js'
import { createLogger } from '../../../core/logger.js'
import { Metrics } from '../../../core/metrics.js'
import { SecurityEvents } from '../../../core/security-events.js'
import { defaultScryptConcurrency, scryptSlots } from '../../../gateway/auth/password.js'
import { hashPassword, LanGateway, loadAccess, type UplinkMessage } from '../../../gateway/index.js'
import { writeSecretFile } from '../../../pki/index.js'
import { rejectionOf } from '../../helpers/catch.js'
import { makeTempDir, removeDir } from '../../helpers/tmp.js'
import { connackCode, connectDevice, publishOutcome } from '../../integration/clients.js'
import { LogCapture } from '../../integration/harness.js'
import { UNUSED_CLOUD } from '../protocol/lan-fixture.js'

/**
 * A device with a `$scrypt-pepper$` hash against the LAN gateway on loopback, started in process
 * from a config that goes through the real parser (as test/gateway/protocol/lan-fixture.ts does),
 * with a real mqtt.js client: it connects and publishes; a wrong password is refused exactly as
 * for a `$scrypt$` device (CONNACK 4, `auth_bad_password`); the verified-password cache remembers
 * it, and a reload that changes its hash makes the old password fail again.
 */
const PEPPERED = { id: 'pep-dev', password: 'peppered password 1' }
const PLAIN = { id: 'plain-dev', password: 'plain password 1' }
const FAST = { ln: 10, r: 8, p: 1 }

let dir: string
let pepperFile: string
let gateway: LanGateway
let metrics: Metrics
const logs = new LogCapture()
const offers: UplinkMessage[] = []

function configWith(devices: Array<Record<string, unknown>>, pepper = pepperFile): Readonly<GatewayConfig> {
  const input = {
    gateway: { id: 'gw-pepper', stateDir: 'state' },
    lan: {
      listeners: [{ name: 'plain', type: 'tcp', host: '127.0.0.1', port: 0 }],
      passwordPepperFile: pepper,
      // Refusals answer at once here: what is compared is the code and the event, not the time.
      lockout: { refusalDelayMs: 0 },
    },
    devices,
    // Required by the schema; never connected to here.
    cloud: UNUSED_CLOUD,
  }
  return parseConfig(stringify(input), { file: join(dir, 'gateway.yaml'), baseDir: dir })
}

async function devicesWith(pepperedPassword: string): Promise<Array<Record<string, unknown>>> {
  const { readPepperFile } = await import('../../../gateway/auth/pepper.js')
  const pepper = await readPepperFile(pepperFile)
  return [
    {
      id: PEPPERED.id,
      username: PEPPERED.id,
      passwordHash: await hashPassword(pepperedPassword, undefined, pepper),
    },
    { id: PLAIN.id, username: PLAIN.id, passwordHash: await hashPassword(PLAIN.password, FAST) },
  ]
}

const port = () => gateway.listener('tcp')!.port
const connect = (device: { id: string }, password: string) =>
  connackCode(port(), { clientId: device.id, username: device.id, password })
const refusalsOf = (id: string) => logs.events('auth_bad_password').filter((r) => r.device === id)

beforeAll(async () => {
  dir = await makeTempDir('edge-gw-pepper-connect-')
  pepperFile = join(dir, 'keys', 'password.pepper')
  await writeSecretFile(pepperFile, `${'7e'.repeat(32)}\n`)
  const config = configWith(await devicesWith(PEPPERED.password))
  const logger = createLogger({ level: 'debug', destination: logs })
  metrics = new Metrics()
  gateway = await LanGateway.start({
    lan: config.lan,
    stateDir: config.gateway.stateDir,
    access: await loadAccess(config),
    uplink: {
      offer: (message) => {
        offers.push(message)
        return 'accepted'
      },
    },
    logger: logger.child({ module: 'gateway' }),
    metrics,
    security: new SecurityEvents(logger.child({ module: 'security' }), metrics),
  })
})

afterAll(async () => {
  await gateway?.close().catch(() => undefined)
  await removeDir(dir)
})

describe('a device with a peppered password hash', () => {
  it('connects with mqtt.js and publishes QoS 1', async () => {
    const client = await connectDevice(port(), {
      clientId: PEPPERED.id,
      username: PEPPERED.id,
      password: PEPPERED.password,
    })
    try {
      expect(await publishOutcome(client, `devices/${PEPPERED.id}/telemetry`, 'hello')).toBe('acked')
    } finally {
      await client.endAsync()
    }
    expect(offers.map((o) => [o.deviceId, o.topic])).toContainEqual([
      PEPPERED.id,
      `devices/${PEPPERED.id}/telemetry`,
    ])
  })

  it('with a wrong password is refused with the same CONNACK and security event as a $scrypt$ device', async () => {
    expect(await connect(PEPPERED, 'Tr0ub4dor&3')).toBe(4)
    expect(await connect(PLAIN, 'Tr0ub4dor&3')).toBe(4)
    const [peppered] = refusalsOf(PEPPERED.id)
    const [plain] = refusalsOf(PLAIN.id)
    const shape = (r: Record<string, unknown> | undefined) => {
      const { time, pid, hostname, clientId, username, device, remoteAddress, ...rest } = r ?? {}
      return rest
    }
    expect(peppered).toMatchObject({
      security: true,
      event: 'auth_bad_password',
      device: PEPPERED.id,
      username: PEPPERED.id,
      clientId: PEPPERED.id,
      listener: 'plain',
      returnCode: 4,
      msg: 'CONNECT refused: wrong password',
    })
    expect(shape(peppered)).toEqual(shape(plain))
    expect(JSON.stringify(logs.records)).not.toContain('Tr0ub4dor')
    expect(JSON.stringify(logs.records)).not.toContain(PEPPERED.password)
  })

  it('is remembered once verified, and a reload that changes its hash makes the old password fail', async () => {
    expect(await connect(PEPPERED, PEPPERED.password)).toBe(0)
    expect(metrics.get('lan_verified_passwords')).toBe(1)
    expect(await connect(PEPPERED, PEPPERED.password)).toBe(0)
    const before = refusalsOf(PEPPERED.id).length
    await gateway.reload({ ...(await loadAccess(configWith(await devicesWith('peppered password 2')))) })
    expect(await connect(PEPPERED, PEPPERED.password)).toBe(4)
    expect(refusalsOf(PEPPERED.id)).toHaveLength(before + 1)
    expect(await connect(PEPPERED, 'peppered password 2')).toBe(0)
  })

  it('a client that closes while its check waits for a slot costs no scrypt, no event and no lockout count', async () => {
    const slots = scryptSlots.size
    let release: () => void = () => undefined
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    scryptSlots.resize(1)
    // The one slot is taken until `release`: the CONNECT below waits its turn.
    const holding = scryptSlots.run(() => held)
    try {
      const socket = connectNet({ host: '127.0.0.1', port: port() })
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
      socket.write(
        mqttPacket.generate({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 4,
          clean: true,
          clientId: PLAIN.id,
          keepalive: 30,
          username: PLAIN.id,
          password: Buffer.from('Tr0ub4dor&3'),
        }),
      )
      await vi.waitFor(() => expect(scryptSlots.queued).toBe(1), { timeout: 5000, interval: 10 })
      const closed = new Promise((resolve) => socket.once('close', resolve))
      socket.end()
      await closed
      // The gateway's side of the connection is gone too.
      await vi.waitFor(async () => expect(await gateway.listener('tcp')!.connections()).toBe(0), {
        timeout: 5000,
        interval: 10,
      })
      const refusals = refusalsOf(PLAIN.id).length
      release()
      await holding
      await logs.waitFor((r) => r.msg === 'the client closed before its password check started')
      expect(refusalsOf(PLAIN.id)).toHaveLength(refusals)
      expect(scryptSlots.inUse).toBe(0)
    } finally {
      release()
      scryptSlots.resize(slots)
    }
  })

  it('sizes the default scrypt concurrency by the hashes in force, at start and at reload', async () => {
    // At start the config has a $scrypt$ device: as many slots as cores, at most 2.
    const peppered = await devicesWith(PEPPERED.password)
    expect((await loadAccess(configWith(peppered))).slowPasswordHashes).toBe(true)
    const onlyPeppered = configWith(peppered.filter((d) => d.id === PEPPERED.id))
    const access = await loadAccess(onlyPeppered)
    expect(access.slowPasswordHashes).toBe(false)
    const before = scryptSlots.size
    try {
      // lan.passwordChecks.memoryMiB at its default: 16 MiB of scrypt runs at once.
      expect(scryptSlots.budget).toBe(16 * 1024 * 1024)
      await gateway.reload(access)
      expect(scryptSlots.size).toBe(defaultScryptConcurrency(undefined, false))
      await gateway.reload(await loadAccess(configWith(peppered)))
      expect(scryptSlots.size).toBe(defaultScryptConcurrency(undefined, true))
      expect(await connect(PEPPERED, PEPPERED.password)).toBe(0)
    } finally {
      scryptSlots.resize(before)
    }
  })

  it('a hash made with another pepper fails the config load, naming the device, not at CONNECT', async () => {
    const otherFile = join(dir, 'keys', 'other.pepper')
    await writeSecretFile(otherFile, `${'11'.repeat(32)}\n`)
    const err = await rejectionOf(loadAccess(configWith(await devicesWith(PEPPERED.password), otherFile)))
    expect(err).toMatchObject({ code: 'GW_ERR_BAD_PASSWORD_HASH' })
    expect((err as Error).message).toMatch(
      /^device pep-dev: a \$scrypt-pepper\$ password hash was made with pepper [0-9a-f]{8}, but lan\.passwordPepperFile holds pepper [0-9a-f]{8}$/,
    )
  })
})
