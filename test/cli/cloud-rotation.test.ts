/**
 * Issue 15, remote certificate rotation, end to end with the real pieces: `edge-gateway start` in
 * front of a real mosquitto (`require_certificate true`), devices publishing QoS 1 at 500 msg/s,
 * and `edge-gateway cloud rotate` / `cloud trust` run by the operator. What the broker sees is
 * read off the wire at its door (test/helpers/tls-tap.ts: the client certificate of every
 * connection, TLS 1.2 so it goes in the clear); what the cloud received is read by a subscriber on
 * the broker's plain listener.
 */
import type { ChildProcess } from 'node:child_process'
import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import forge from 'node-forge'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { operatorKid, signCommand } from '../../bridge/envelope.js'
import { hashPassword } from '../../gateway/index.js'
import {
  type CertificateAuthority,
  createCertificateAuthority,
  issueCertificate,
  writePublicFile,
  writeSecretFile,
} from '../../pki/index.js'
import { readEnvelopeUnverified } from '../helpers/envelope.js'
import { CloudMosquitto } from '../helpers/mosquitto.js'
import { mosquittoPub } from '../helpers/mosquitto-clients.js'
import { freePort } from '../helpers/ports.js'
import { exitOf, signalPid, terminate } from '../helpers/processes.js'
import { TlsTap } from '../helpers/tls-tap.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { connectDevice } from '../integration/clients.js'
import { waitUntil } from '../integration/harness.js'
import { runCli, spawnCli, startGatewayCli } from './run-cli.js'

const GATEWAY = 'gw-rot'
const SERVERNAME = 'cloud.test'
const PASSWORD = 'rotation-password'
const DEVICES = Array.from({ length: 10 }, (_, i) => `dev${i}`)
/** The gateway speaks TLS 1.2 so that the tap can read the client certificate it presents. */
const TLS12 = { NODE_OPTIONS: '--tls-max-v1.2' }
const ROTATE = `$gw/${GATEWAY}/rotate`
const PSK_KEY = '00112233445566778899aabbccddeeff'
const PAY_SECRET = '0f1e2d3c4b5a69788796a5b4c3d2e1f0'
const REPLIES = `$gw/${GATEWAY}/rotation`

/** Devices publishing QoS 1 at `perDevice` msg/s each, for `durationMs`; what was acknowledged. */
class Load {
  readonly acked = new Set<string>()
  closes = 0
  private constructor(
    private readonly clients: MqttClient[],
    readonly done: Promise<void>,
  ) {}

  static async start(lanPort: number, perDevice: number, durationMs: number, tag: string): Promise<Load> {
    const clients = await Promise.all(
      DEVICES.map((d) =>
        connectDevice(lanPort, { username: d, password: PASSWORD, clientId: d, reconnectPeriod: 0 }),
      ),
    )
    let load: Load | undefined
    const done = (async () => {
      const until = Date.now() + durationMs
      const pending: Array<Promise<void>> = []
      let n = 0
      while (Date.now() < until) {
        for (const [i, client] of clients.entries()) {
          const payload = `${tag}-${DEVICES[i]}-${n}`
          pending.push(
            new Promise<void>((resolve) => {
              client.publish(`devices/${DEVICES[i]}/reading`, payload, { qos: 1 }, (err) => {
                if (!err) load?.acked.add(payload)
                resolve()
              })
            }),
          )
        }
        n++
        await new Promise((r) => setTimeout(r, 1000 / perDevice))
      }
      await Promise.race([Promise.all(pending), new Promise((r) => setTimeout(r, 15_000))])
    })()
    load = new Load(clients, done)
    for (const c of clients) c.on('close', () => load && load.closes++)
    return load
  }

  async stop(): Promise<void> {
    await this.done
    for (const c of this.clients) c.removeAllListeners('close')
    await Promise.all(this.clients.map((c) => c.endAsync()))
  }
}

/** A certificate for the public key of `csrPem`, with whatever fields a test wants wrong. */
function issueFor(
  ca: CertificateAuthority,
  publicKey: forge.pki.PublicKey,
  fields: { cn?: string; notBefore?: Date; notAfter?: Date; serverAuth?: boolean },
): string {
  const caCert = forge.pki.certificateFromPem(ca.certPem)
  const caKey = forge.pki.privateKeyFromPem(ca.keyPem)
  const cert = forge.pki.createCertificate()
  cert.publicKey = publicKey
  cert.serialNumber = `01${randomBytes(8).toString('hex')}`
  cert.validity.notBefore = fields.notBefore ?? new Date(Date.now() - 60_000)
  cert.validity.notAfter = fields.notAfter ?? new Date(Date.now() + 86_400_000)
  cert.setSubject([{ name: 'commonName', value: fields.cn ?? GATEWAY }])
  cert.setIssuer(caCert.subject.attributes)
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    fields.serverAuth ? { name: 'extKeyUsage', serverAuth: true } : { name: 'extKeyUsage', clientAuth: true },
  ])
  cert.sign(caKey, forge.md.sha256.create())
  return forge.pki.certificateToPem(cert)
}

describe('edge-gateway cloud rotate / cloud trust against a real mosquitto, devices publishing throughout', () => {
  let dir: string
  let broker: CloudMosquitto
  let tap: TlsTap
  let gateway: ChildProcess
  let logs: Array<Record<string, unknown>> = []
  let lines: string[] = []
  let lanPort: number
  let pskPort: number
  let observer: MqttClient
  let operator: MqttClient
  const received = new Set<string>()
  const replies: Array<Record<string, unknown>> = []
  const cas: Record<string, CertificateAuthority> = {}
  const file = (name: string) => join(dir, name)
  const operatorKey = generateKeyPairSync('ed25519')
  const strangerKey = generateKeyPairSync('ed25519')

  const linkUps = () => logs.filter((l) => l.msg === 'cloud link up').length
  const securityEvents = (event: string) => logs.filter((l) => l.event === event)
  const servedSerial = async () => new X509Certificate(await readFile(file('gateway.pem'))).serialNumber

  async function startGateway(): Promise<void> {
    ;({ child: gateway, logs, lines } = await startGatewayCli(file('gateway.yaml'), 15_000, TLS12))
    await waitUntil(() => linkUps() >= 1, 15_000, 'the cloud link up')
  }

  async function status(): Promise<{
    serial: string
    notAfter: string
    entries: Array<Record<string, unknown>>
  }> {
    const out = await runCli(['status', '--config', file('gateway.yaml'), '--json'])
    const parsed = JSON.parse(out.stdout) as {
      bridge: {
        certificate: { serial: string; notAfter: string }
        certificates: Array<Record<string, unknown>>
      }
    }
    return { ...parsed.bridge.certificate, entries: parsed.bridge.certificates }
  }

  /** Waits (10 s at most) until `edge-gateway status` shows `serial`: status.json is written every 2 s. */
  async function statusShows(serial: string): Promise<void> {
    const until = Date.now() + 10_000
    while ((await status()).serial !== serial) {
      if (Date.now() > until) throw new Error(`edge-gateway status does not show serial ${serial}`)
      await new Promise((r) => setTimeout(r, 250))
    }
  }

  /** A rotation command signed by `key` (default: the trusted operator's), published by the operator. */
  async function push(
    body: Record<string, unknown>,
    opts: { key?: typeof operatorKey.privateKey; timestamp?: number; raw?: Buffer } = {},
  ): Promise<Buffer> {
    const key = opts.key ?? operatorKey.privateKey
    const bytes =
      opts.raw ??
      signCommand(key, operatorKid(key), ROTATE, {
        gatewayId: GATEWAY,
        deviceId: '',
        nonce: randomBytes(16),
        timestamp: opts.timestamp ?? Date.now(),
        body: Buffer.from(JSON.stringify(body)),
      })
    await operator.publishAsync(ROTATE, bytes, { qos: 1 })
    return bytes
  }

  async function nextReply(after: number, what: string): Promise<Record<string, unknown>> {
    await waitUntil(() => replies.length > after, 15_000, what)
    return replies[after] as Record<string, unknown>
  }

  async function cloudRotate(ca: string, extra: string[] = []) {
    return runCli(
      [
        'cloud',
        'rotate',
        '-c',
        file('cloud.yaml'),
        '--gateway',
        GATEWAY,
        '--ca-cert',
        file(`${ca}-ca.pem`),
        '--ca-key',
        file(`${ca}-ca.key`),
        '--days',
        '60',
        '--timeout',
        '30',
        ...extra,
      ],
      90_000,
    )
  }

  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-rotation-')
    for (const name of ['cloud', 'rogue', 'next'])
      cas[name] = createCertificateAuthority({ commonName: `${name} CA` })
    for (const name of ['cloud', 'rogue', 'next']) {
      await writePublicFile(file(`${name}-ca.pem`), cas[name]!.certPem)
      await writeSecretFile(file(`${name}-ca.key`), cas[name]!.keyPem)
    }
    // The broker accepts client certificates from the cloud CA only; the gateway would accept a
    // certificate from the rogue CA too (its issuer bundle holds both): the broker's word decides.
    await writePublicFile(file('issuers.pem'), cas.cloud!.certPem + cas.rogue!.certPem)
    const client = issueCertificate(cas.cloud!, { commonName: GATEWAY, kind: 'client', validDays: 20 })
    await writePublicFile(file('gateway.pem'), client.certPem)
    await writeSecretFile(file('gateway.key'), client.keyPem)
    const op = issueCertificate(cas.cloud!, { commonName: 'operator', kind: 'client' })
    await writePublicFile(file('operator.pem'), op.certPem)
    await writeSecretFile(file('operator.key'), op.keyPem)
    const server = issueCertificate(cas.cloud!, {
      commonName: SERVERNAME,
      kind: 'server',
      altNames: [SERVERNAME],
    })
    await writePublicFile(file('server.pem'), server.certPem)
    await writeSecretFile(file('server.key'), server.keyPem)
    await writePublicFile(file('trust.pem'), cas.cloud!.certPem)
    await writePublicFile(
      file('ops.pub'),
      operatorKey.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    )
    await writeSecretFile(file('ops.key'), operatorKey.privateKey.export({ type: 'pkcs8', format: 'pem' }))
    const plainPort = await freePort()
    broker = await CloudMosquitto.start({
      dir,
      caFile: file('cloud-ca.pem'),
      certFile: file('server.pem'),
      keyFile: file('server.key'),
      persistence: true,
      extraConfig: ['max_queued_messages 0', `listener ${plainPort} 127.0.0.1`],
    })
    tap = await TlsTap.start(broker.port)
    observer = await mqtt.connectAsync({
      host: '127.0.0.1',
      port: plainPort,
      clientId: 'observer',
      clean: false,
      reconnectPeriod: 200,
    })
    observer.on('message', (topic, payload) => {
      if (topic === REPLIES) {
        const e = readEnvelopeUnverified(payload)
        if (e) replies.push(JSON.parse(e.body.toString('utf8')) as Record<string, unknown>)
        return
      }
      const e = readEnvelopeUnverified(payload)
      if (e?.kind === 1) received.add(e.body.toString('utf8'))
    })
    await observer.subscribeAsync(['gw/#', REPLIES], { qos: 1 })
    operator = await mqtt.connectAsync({ host: '127.0.0.1', port: plainPort, clientId: 'pusher' })
    lanPort = await freePort()
    pskPort = await freePort()
    await writeSecretFile(file('keys/pskdev.psk'), `${PSK_KEY}\n`)
    await writeSecretFile(file('keys/paydev.secret'), `${PAY_SECRET}\n`)
    const hash = await hashPassword(PASSWORD)
    const config = {
      gateway: { id: GATEWAY, stateDir: file('state') },
      log: { level: 'info', pretty: false },
      lan: {
        listeners: [
          { type: 'tcp', host: '127.0.0.1', port: lanPort },
          { type: 'tls-psk', host: '127.0.0.1', port: pskPort },
        ],
        deviceRate: { messagesPerSecond: 1000, burst: 2000 },
        protection: [{ topic: 'devices/paydev/#', mode: 'sealed' }],
      },
      devices: [
        ...DEVICES.map((d) => ({ id: d, username: d, passwordHash: hash })),
        { id: 'pskdev', psk: { identity: 'pskdev', keyFile: file('keys/pskdev.psk') } },
        {
          id: 'paydev',
          clientIds: ['paydev', 'paydev-*'],
          payloadKey: { kid: 'a1', secretFile: file('keys/paydev.secret') },
        },
      ],
      policies: {
        rules: [
          { name: 'own', who: 'everyone', topic: 'devices/%d/#', action: 'both' },
          { name: 'key-updates', who: 'everyone', topic: 'keys/%d', action: 'subscribe' },
        ],
      },
      cloud: {
        host: '127.0.0.1',
        port: tap.port,
        servername: SERVERNAME,
        caFile: file('trust.pem'),
        certFile: file('gateway.pem'),
        keyFile: file('gateway.key'),
        connectTimeoutMs: 3000,
        reconnect: { initialDelayMs: 200, maxDelayMs: 1000 },
        topics: [{ local: 'devices/', cloud: 'gw/' }],
        control: { intervalSeconds: 2 },
        rotation: {
          issuerCaFile: file('issuers.pem'),
          deadlineSeconds: 5,
          operators: [{ name: 'ops', publicKeyFile: file('ops.pub') }],
        },
      },
    }
    await writeFile(file('gateway.yaml'), stringify(config), { mode: 0o600 })
    const cloudTool = {
      broker: {
        host: '127.0.0.1',
        port: broker.port,
        servername: SERVERNAME,
        caFile: file('trust.pem'),
        certFile: file('operator.pem'),
        keyFile: file('operator.key'),
      },
      trust: { caFile: file('cloud-ca.pem') },
      operator: { keyFile: file('ops.key') },
    }
    await writeFile(file('cloud.yaml'), stringify(cloudTool), { mode: 0o600 })
    await startGateway()
  }, 90_000)

  afterAll(async () => {
    if (gateway) await terminate(gateway)
    await observer?.endAsync()
    await operator?.endAsync()
    await tap?.stop()
    await broker?.stop()
    if (dir) await removeDir(dir)
  })

  it('cloud rotate mid-stream at 500 msg/s: 0 acknowledged messages lost, 0 device disconnects, the broker sees the old then the new serial', async () => {
    const oldSerial = await servedSerial()
    expect(tap.serials()).toEqual([oldSerial])
    const load = await Load.start(lanPort, 50, 8000, 'rotate')
    await new Promise((r) => setTimeout(r, 2500))
    const rotateStart = Date.now()
    const rotated = await cloudRotate('cloud')
    const rotateMs = Date.now() - rotateStart
    await load.stop()
    expect(rotated.stderr).toBe('')
    expect(rotated.code).toBe(0)
    const newSerial = await servedSerial()
    expect(newSerial).not.toBe(oldSerial)
    expect(rotated.stdout).toContain('proof of possession verified')
    expect(rotated.stdout).toContain(`now uses serial ${newSerial}`)
    // The broker saw the old certificate, then the new one, and nothing since.
    expect(tap.serials()).toEqual([oldSerial, newSerial])
    expect(load.acked.size).toBeGreaterThan(3000)
    await waitUntil(
      () => [...load.acked].every((p) => received.has(p)),
      30_000,
      'every acknowledged message at the cloud',
    )
    expect(load.closes).toBe(0)
    const lost = [...load.acked].filter((p) => !received.has(p)).length
    console.log(
      `rotation mid-stream: ${DEVICES.length} devices at 50 msg/s each, acknowledged ${load.acked.size}, lost ${lost}, device disconnects ${load.closes}; cloud rotate took ${rotateMs} ms; the broker saw serials ${tap.serials().join(' -> ')}`,
    )
    // On disk: the new pair, the key 0600; nothing pending.
    expect((await stat(file('gateway.key'))).mode & 0o777).toBe(0o600)
    const installed = new X509Certificate(await readFile(file('gateway.pem')))
    const { createPrivateKey } = await import('node:crypto')
    expect(installed.checkPrivateKey(createPrivateKey(await readFile(file('gateway.key'))))).toBe(true)
    // edge-gateway status shows the new serial and expiry.
    await statusShows(newSerial)
    const shown = await status()
    expect(shown.notAfter).toBe(new Date(installed.validTo).toISOString())
    expect(shown.entries.find((e) => e.use === 'cloud client')).toMatchObject({
      serial: newSerial,
      daysLeft: 59,
    })
    const text = await runCli(['status', '--config', file('gateway.yaml')])
    expect(text.stdout).toContain(`serial ${newSerial}`)
    expect(text.stdout).toMatch(/expiry {7}cloud CA CN=cloud CA, serial [0-9A-F]+: \d+ day\(s\) left/)
    // The rotation's log lines name their module once (a child of the bridge's logger wrote it twice).
    expect(lines.some((l) => l.includes('"module":"rotation"'))).toBe(true)
    expect(lines.filter((l) => (l.match(/"module":/g) ?? []).length > 1)).toEqual([])
  }, 120_000)

  it('every bad push is refused with a security event and changes nothing', async () => {
    const serial = await servedSerial()
    const ups = linkUps()
    let at = replies.length
    // A CSR is pending from here on, so the certificate checks are what refuses.
    await push({ type: 'csr-request', request: randomBytes(16).toString('hex') })
    const csrReply = await nextReply(at++, 'a CSR')
    expect(csrReply.state).toBe('csr')
    const pendingKey = forge.pki.certificationRequestFromPem(csrReply.csr as string)
      .publicKey as forge.pki.PublicKey
    const otherKey = forge.pki.rsa.generateKeyPair({ bits: 1024 }).publicKey
    const request = () => randomBytes(16).toString('hex')
    const certificate = (pem: string) => ({ type: 'certificate', request: request(), certificate: pem })
    const replayed = await push({ type: 'csr-request', request: request() })
    expect((await nextReply(at++, 'the CSR again')).state).toBe('csr')
    const day = 86_400_000
    const cases: Array<[string, () => Promise<unknown>]> = [
      ['malformed', () => push({}, { raw: Buffer.from(JSON.stringify(certificate('unsigned'))) })],
      [
        'unknown_kid',
        () => push(certificate(issueFor(cas.cloud!, pendingKey, {})), { key: strangerKey.privateKey }),
      ],
      ['replayed', () => push({}, { raw: replayed })],
      [
        'stale',
        () => push(certificate(issueFor(cas.cloud!, pendingKey, {})), { timestamp: Date.now() - 3600_000 }),
      ],
      ['key_mismatch', () => push(certificate(issueFor(cas.cloud!, otherKey, {})))],
      ['wrong_ca', () => push(certificate(issueFor(cas.next!, pendingKey, {})))],
      [
        'expired',
        () =>
          push(
            certificate(
              issueFor(cas.cloud!, pendingKey, {
                notBefore: new Date(Date.now() - 10 * day),
                notAfter: new Date(Date.now() - day),
              }),
            ),
          ),
      ],
      [
        'not_yet_valid',
        () =>
          push(
            certificate(
              issueFor(cas.cloud!, pendingKey, {
                notBefore: new Date(Date.now() + day),
                notAfter: new Date(Date.now() + 10 * day),
              }),
            ),
          ),
      ],
      ['wrong_subject', () => push(certificate(issueFor(cas.cloud!, pendingKey, { cn: 'another-gateway' })))],
      ['wrong_key_usage', () => push(certificate(issueFor(cas.cloud!, pendingKey, { serverAuth: true })))],
    ]
    for (const [reason, send] of cases) {
      const events = securityEvents('rotation_refused').length
      await send()
      const reply = await nextReply(at++, `the refusal (${reason})`)
      expect(reply).toMatchObject({ state: 'refused', reason })
      await waitUntil(
        () => securityEvents('rotation_refused').length > events,
        5000,
        `the security event (${reason})`,
      )
      expect(securityEvents('rotation_refused').at(-1)).toMatchObject({ reason })
    }
    expect(await servedSerial()).toBe(serial)
    expect(linkUps()).toBe(ups)
    expect(tap.serials().at(-1)).toBe(serial)
    const refusals = async () =>
      (
        JSON.parse((await runCli(['status', '--config', file('gateway.yaml'), '--json'])).stdout) as {
          bridge: { metrics: Record<string, number> }
        }
      ).bridge.metrics
    const until = Date.now() + 10_000
    while ((await refusals())['rotation_refused_total{reason="wrong_key_usage"}'] !== 1) {
      if (Date.now() > until) throw new Error('status never counted the refusals')
      await new Promise((r) => setTimeout(r, 250))
    }
    const counted = await refusals()
    for (const [reason] of cases) expect(counted[`rotation_refused_total{reason="${reason}"}`]).toBe(1)
  }, 120_000)

  it('a certificate the broker refuses is rolled back within the deadline while traffic goes on over the old one', async () => {
    const serial = await servedSerial()
    const disconnects = () => logs.filter((l) => String(l.msg).startsWith('cloud link down')).length
    const before = disconnects()
    const load = await Load.start(lanPort, 50, 6000, 'rollback')
    await new Promise((r) => setTimeout(r, 1000))
    const started = Date.now()
    const rotated = await cloudRotate('rogue')
    const took = Date.now() - started
    await load.stop()
    expect(rotated.code).toBe(1)
    expect(rotated.stdout).toContain('ROLLED BACK by the gateway: connection_failed')
    expect(took).toBeLessThan(30_000)
    console.log(
      `rollback: cloud rotate with a certificate the broker refuses answered in ${took} ms (deadline 5 s)`,
    )
    expect(await servedSerial()).toBe(serial)
    expect(disconnects()).toBe(before)
    expect(securityEvents('rotation_rolled_back').at(-1)).toMatchObject({ reason: 'connection_failed' })
    await waitUntil(
      () => [...load.acked].every((p) => received.has(p)),
      30_000,
      'every acknowledged message at the cloud',
    )
    expect(load.closes).toBe(0)
    // The broker saw one connection with the refused certificate; the link stayed on the old one.
    expect(tap.connections.at(-1)?.serial).not.toBe(serial)
    expect(tap.serials().at(-1)).not.toBe(serial)
    await statusShows(serial)
  }, 120_000)

  it('a kill -9 in the middle of a rotation leaves the gateway on a working certificate after restart', async () => {
    const serial = await servedSerial()
    // The new certificate's connection is slow to come up (3 s, within the 5 s deadline): the kill
    // lands while the gateway holds a checked certificate and waits for its CONNACK.
    tap.holdNextMs = 3000
    const child = spawnCli([
      'cloud',
      'rotate',
      '-c',
      file('cloud.yaml'),
      '--gateway',
      GATEWAY,
      '--ca-cert',
      file('cloud-ca.pem'),
      '--ca-key',
      file('cloud-ca.key'),
      '--timeout',
      '8',
    ])
    let issued = ''
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      issued += chunk
    })
    const mark = logs.length
    await waitUntil(
      () =>
        logs
          .slice(mark)
          .some((l) => String(l.msg).startsWith('rotation: the pushed certificate passed every check')),
      30_000,
      'the push being tried',
    )
    signalPid(gateway.pid, 'SIGKILL')
    await exitOf(gateway)
    expect((await exitOf(child)).code).toBe(1)
    await startGateway()
    const after = await servedSerial()
    const { createPrivateKey } = await import('node:crypto')
    const cert = new X509Certificate(await readFile(file('gateway.pem')))
    expect(cert.checkPrivateKey(createPrivateKey(await readFile(file('gateway.key'))))).toBe(true)
    // Killed before the switch: back on the old pair, whole; the checked certificate is forgotten.
    expect(after).toBe(serial)
    expect(issued).toMatch(/issued serial [0-9A-F]+/)
    expect(
      logs.some((l) =>
        String(l.msg).startsWith('a certificate rotation was cut short before it was installed'),
      ),
    ).toBe(true)
    const load = await Load.start(lanPort, 20, 2000, 'after-kill')
    await load.stop()
    await waitUntil(() => [...load.acked].every((p) => received.has(p)), 30_000, 'delivery after the restart')
    // The operator runs the rotation again, and it goes through.
    const again = await cloudRotate('cloud')
    expect(again.code).toBe(0)
    expect(await servedSerial()).not.toBe(serial)
  }, 180_000)

  it('cloud trust pushes a new CA bundle; the broker moves to a server certificate from it and the gateway keeps its link', async () => {
    const pushed = await runCli([
      'cloud',
      'trust',
      '-c',
      file('cloud.yaml'),
      '--gateway',
      GATEWAY,
      '--ca-bundle',
      file('next-ca.pem'),
      '--overlap-days',
      '7',
    ])
    expect(pushed.stderr).toBe('')
    expect(pushed.code).toBe(0)
    expect(pushed.stdout).toMatch(/trusts the new bundle, and the old one until /)
    const bundle =
      (await readFile(file('trust.pem'), 'utf8')).match(/-----BEGIN[\s\S]*?END CERTIFICATE-----/g) ?? []
    expect(bundle.map((pem) => new X509Certificate(pem).subject)).toEqual(['CN=next CA', 'CN=cloud CA'])
    const ups = linkUps()
    const server = issueCertificate(cas.next!, {
      commonName: SERVERNAME,
      kind: 'server',
      altNames: [SERVERNAME],
    })
    await writePublicFile(file('server.pem'), server.certPem)
    await writeSecretFile(file('server.key'), server.keyPem)
    const load = await Load.start(lanPort, 20, 4000, 'trust')
    await broker.restart()
    await load.stop()
    await waitUntil(() => linkUps() > ups, 20_000, 'the cloud link up again')
    await waitUntil(
      () => [...load.acked].every((p) => received.has(p)),
      30_000,
      'every acknowledged message at the cloud',
    )
    expect(logs.filter((l) => l.level === 40 && l.code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE')).toEqual([])
  }, 120_000)
  it('cloud device-psk: a PSK device gets a new key pushed from the cloud and works with either key during the overlap', async () => {
    const pub = (identity: string, keyHex: string, message: string) =>
      mosquittoPub({
        host: '127.0.0.1',
        port: pskPort,
        psk: { identity, keyHex },
        clientId: 'pskdev',
        topic: 'devices/pskdev/reading',
        message,
        qos: 1,
      })
    expect((await pub('pskdev', PSK_KEY, 'psk-before')).code).toBe(0)
    const reloads = () => logs.filter((l) => String(l.msg).startsWith('reloaded devices and policies')).length
    const before = reloads()
    const pushed = await runCli([
      'cloud',
      'device-psk',
      '-c',
      file('cloud.yaml'),
      '--gateway',
      GATEWAY,
      '--device',
      'pskdev',
      '--out',
      file('pskdev-new.psk'),
      '--overlap-hours',
      '1',
    ])
    expect(pushed.stderr).toBe('')
    expect(pushed.code).toBe(0)
    expect(pushed.stdout).toMatch(
      /device pskdev now has PSK identity pskdev-r2; the old identity pskdev is accepted until /,
    )
    const newKey = (await readFile(file('pskdev-new.psk'), 'utf8')).trim()
    expect(newKey).toMatch(/^[0-9a-f]{32}$/)
    expect((await stat(file('pskdev-new.psk'))).mode & 0o777).toBe(0o600)
    // The gateway wrote the same key beside the old one (0600), never logged it, and reloaded.
    expect((await readFile(file('keys/pskdev-r2.psk'), 'utf8')).trim()).toBe(newKey)
    expect((await stat(file('keys/pskdev-r2.psk'))).mode & 0o777).toBe(0o600)
    expect(JSON.stringify(logs)).not.toContain(newKey)
    expect(pushed.stdout).not.toContain(newKey)
    await waitUntil(() => reloads() > before, 10_000, 'the reload of the rewritten config')
    expect((await pub('pskdev-r2', newKey, 'psk-new')).code).toBe(0)
    expect((await pub('pskdev', PSK_KEY, 'psk-old-in-overlap')).code).toBe(0)
    expect((await pub('pskdev-r2', PSK_KEY, 'psk-wrong')).code).not.toBe(0)
    await waitUntil(
      () => ['psk-before', 'psk-new', 'psk-old-in-overlap'].every((p) => received.has(p)),
      10_000,
      'the PSK device messages at the cloud',
    )
    // A device the gateway does not have: refused with its reason, nothing written.
    const unknown = await runCli([
      'cloud',
      'device-psk',
      '-c',
      file('cloud.yaml'),
      '--gateway',
      GATEWAY,
      '--device',
      'nobody',
      '--out',
      file('nobody.psk'),
    ])
    expect(unknown.code).toBe(1)
    expect(unknown.stdout).toContain('REFUSED by the gateway: unknown_device')
    expect(securityEvents('rotation_refused').at(-1)).toMatchObject({ reason: 'unknown_device' })
  }, 60_000)
  it('cloud device-key: a payload device gets a new master secret, sealed under its old key, and works with either key until the overlap ends', async () => {
    const { readMasterSecretConfig } = await import('../../gateway/protection/master-secret.js')
    const { DeviceProtector } = await import('../../device/protector.js')
    const { SequenceCounter } = await import('../../device/sequence.js')
    const counter = await SequenceCounter.open(file('paydev.seq'))
    let protector = new DeviceProtector(
      await readMasterSecretConfig({
        kid: 'a1',
        secretFile: file('keys/paydev.secret'),
        aead: 'AES-CCM-16-64-128',
        mac: 'HMAC 256/64',
      }),
      counter,
    )
    const oldProtector = protector
    const connect = (p: InstanceType<typeof DeviceProtector>, clientId: string) =>
      connectDevice(lanPort, {
        username: 'paydev',
        password: p.token(clientId),
        clientId,
        reconnectPeriod: 0,
      })
    const device = await connect(protector, 'paydev')
    const updates: Buffer[] = []
    device.on('message', (topic, payload) => {
      if (topic === 'keys/paydev') updates.push(payload)
    })
    await device.subscribeAsync('keys/paydev', { qos: 1 })
    const send = async (p: InstanceType<typeof DeviceProtector>, text: string) =>
      device.publishAsync(
        'devices/paydev/reading',
        await p.seal('devices/paydev/reading', Buffer.from(text)),
        { qos: 1 },
      )
    await send(protector, 'pay-old')
    const reloads = () => logs.filter((l) => String(l.msg).startsWith('reloaded devices and policies')).length
    const before = reloads()
    const pushed = await runCli([
      'cloud',
      'device-key',
      '-c',
      file('cloud.yaml'),
      '--gateway',
      GATEWAY,
      '--device',
      'paydev',
      '--topic',
      'keys/paydev',
      '--overlap-hours',
      '0.003',
    ])
    expect(pushed.stderr).toBe('')
    expect(pushed.code).toBe(0)
    const reported =
      /new payload key \(kid ([0-9a-f]+)\), retained for it on keys\/paydev sealed under kid a1, which is accepted until (\S+)/.exec(
        pushed.stdout,
      )
    expect(reported).not.toBeNull()
    const until = Date.parse(reported![2]!)
    // The device gets the update sealed under its old key, and takes the new one from it.
    await waitUntil(() => updates.length > 0, 10_000, 'the key update at the device')
    const accepted = protector.acceptKeyUpdate('keys/paydev', updates[0]!)
    expect(accepted).toBeDefined()
    expect(accepted!.until).toBe(until)
    protector = accepted!.protector
    expect(protector.kid.toString('hex')).toBe(reported![1])
    expect(accepted!.kid.toString('hex')).toBe(reported![1])
    // The new secret is on the gateway (0600), never in a log or on the cloud side.
    const configText = await readFile(file('gateway.yaml'), 'utf8')
    const secretFile = new RegExp(`(\\S+paydev-${reported![1]}\\.secret)`).exec(configText)?.[1]
    expect(secretFile).toBeDefined()
    expect((await stat(secretFile!)).mode & 0o777).toBe(0o600)
    const secretHex = (await readFile(secretFile!, 'utf8')).trim()
    // What the device is given to store is the secret the gateway wrote.
    expect(accepted!.masterSecret.toString('hex')).toBe(secretHex)
    expect(JSON.stringify(logs)).not.toContain(secretHex)
    expect(pushed.stdout).not.toContain(secretHex)
    await waitUntil(() => reloads() > before, 10_000, 'the reload of the rewritten config')
    await send(protector, 'pay-new')
    await send(oldProtector, 'pay-old-in-overlap')
    // A new connection with a token under the new key.
    const again = await connect(protector, 'paydev-again')
    await again.endAsync()
    await waitUntil(
      () => ['pay-old', 'pay-new', 'pay-old-in-overlap'].every((p) => received.has(p)),
      10_000,
      'the payload device messages at the cloud',
    )
    expect(securityEvents('payload_rejected')).toEqual([])
    // After the overlap: the old kid is refused, the new one goes on.
    await new Promise((r) => setTimeout(r, Math.max(0, until - Date.now()) + 200))
    await send(oldProtector, 'pay-old-after')
    await send(protector, 'pay-new-after')
    await waitUntil(() => received.has('pay-new-after'), 10_000, 'the new key after the overlap')
    expect(received.has('pay-old-after')).toBe(false)
    expect(securityEvents('payload_rejected').at(-1)).toMatchObject({
      reason: 'retired_kid',
      device: 'paydev',
    })
    const late = await connect(oldProtector, 'paydev-late').then(
      (c) => c.endAsync().then(() => 'connected'),
      () => 'refused',
    )
    expect(late).toBe('refused')
    // The retained update is cleared once the overlap is over: a new subscriber gets nothing.
    await waitUntil(
      () => logs.some((l) => String(l.msg).startsWith('key updates: the overlap is over')),
      10_000,
      'the retained update cleared',
    )
    const fresh = await connect(protector, 'paydev-fresh')
    const retained: Buffer[] = []
    fresh.on('message', (_t, payload) => retained.push(payload))
    await fresh.subscribeAsync('keys/paydev', { qos: 1 })
    await new Promise((r) => setTimeout(r, 500))
    await fresh.endAsync()
    expect(retained).toEqual([])
    expect(securityEvents('auth_bad_token').at(-1)).toMatchObject({
      device: 'paydev',
      msg: 'CONNECT refused: one-time token refused (retired_kid)',
    })
    await device.endAsync()
  }, 60_000)
})
