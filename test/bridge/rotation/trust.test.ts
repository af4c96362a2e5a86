import { createPrivateKey, generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { BehaviorSubject } from 'rxjs'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { CloudLink } from '../../../bridge/cloud-link.js'
import { CloudProtector } from '../../../bridge/cloud-protector.js'
import { CommandNonces } from '../../../bridge/command-nonces.js'
import { ControlTopics, GatewayCertificate } from '../../../bridge/control.js'
import { operatorKid, signCommand } from '../../../bridge/envelope.js'
import { CertificateRotation, type RotationOptions } from '../../../bridge/rotation/rotation.js'
import type { CloudConfig } from '../../../config/index.js'
import { createLogger } from '../../../core/logger.js'
import { Metrics } from '../../../core/metrics.js'
import { SecurityEvents } from '../../../core/security-events.js'
import { checkCsr, createCsr, issueFromCsr } from '../../../pki/csr.js'
import {
  createCertificateAuthority,
  issueCertificate,
  writePublicFile,
  writeSecretFile,
} from '../../../pki/index.js'
import { prefilledNonces } from '../../helpers/command-nonces.js'
import { makeTempDir, removeDir } from '../../helpers/tmp.js'

const DAY = 86_400_000
const oldCa = createCertificateAuthority({ commonName: 'old CA' })
const newCa = createCertificateAuthority({ commonName: 'new CA' })
const client = issueCertificate(oldCa, { commonName: 'gw', kind: 'client' })
const operator = generateKeyPairSync('ed25519')

/**
 * `trust` pushes, driven through CertificateRotation.handle with signed commands (no broker: the
 * link has no session, so replies are only logged): the overlap, its end, and the cases where the
 * old bundle must not be dropped.
 */
describe('CertificateRotation: a pushed CA bundle and its overlap', () => {
  let dir: string
  let cloud: CloudConfig
  let rotation: CertificateRotation
  let options: RotationOptions
  const lines: Array<Record<string, unknown>> = []
  /** What the link's TLS probe of the broker answers, and the CA bundles it was asked about. */
  let probe: { ok: true } | { ok: false; cause: string } = { ok: true }
  /** A probe waits for this (a broker that drops packets holds it for its deadline). */
  let probeHeld: Promise<void> = Promise.resolve()
  const probes: string[] = []
  const subjects = async () =>
    (
      (await readFile(cloud.caFile, 'utf8')).match(
        /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g,
      ) ?? []
    ).map((pem) => new X509Certificate(pem).subject)
  const trust = (bundle: string, overlapDays: number, now: number) =>
    rotation.handle(
      signCommand(operator.privateKey, operatorKid(operator.privateKey), '$gw/gw/rotate', {
        gatewayId: 'gw',
        deviceId: '',
        nonce: randomBytes(16),
        timestamp: now,
        body: Buffer.from(
          JSON.stringify({ type: 'trust', request: randomBytes(16).toString('hex'), bundle, overlapDays }),
        ),
      }),
      now,
    )

  beforeEach(async () => {
    dir = await makeTempDir('edge-gw-trust-')
    cloud = {
      caFile: join(dir, 'trust.pem'),
      certFile: join(dir, 'gw.pem'),
      keyFile: join(dir, 'gw.key'),
      rotation: { leadDays: 30, deadlineSeconds: 5, warnDays: [30] },
    } as CloudConfig
    await writePublicFile(cloud.caFile, oldCa.certPem)
    await writePublicFile(cloud.certFile, client.certPem)
    await writeSecretFile(cloud.keyFile, client.keyPem)
    lines.length = 0
    probe = { ok: true }
    probeHeld = Promise.resolve()
    probes.length = 0
    const logger = createLogger({
      level: 'info',
      destination: new Writable({
        write(chunk: Buffer, _e, done) {
          for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l))
          done()
        },
      }),
    })
    const metrics = new Metrics()
    options = {
      cloud,
      gatewayId: 'gw',
      stateDir: join(dir, 'state'),
      control: new ControlTopics('$gw', 'gw'),
      operators: [{ name: 'ops', kid: operatorKid(operator.publicKey), key: operator.publicKey }],
      nonces: await CommandNonces.open(join(dir, 'nonces')),
      maxAgeSeconds: 300,
      certificate: await GatewayCertificate.load(cloud),
      link: {
        session$: new BehaviorSubject(null),
        clientId: 'gw',
        probeTrust: async (ca: Buffer) => {
          probes.push(ca.toString())
          await probeHeld
          return probe
        },
      } as unknown as CloudLink,
      protector: new CloudProtector('gw', generateKeyPairSync('ed25519').privateKey, new Map()),
      security: new SecurityEvents(logger, metrics),
      metrics,
      logger,
    }
    rotation = new CertificateRotation(options)
  })
  afterEach(async () => removeDir(dir))

  it('keeps the old CAs for the overlap, then holds the pushed bundle alone', async () => {
    const now = Date.now()
    expect(await trust(newCa.certPem, 7, now)).toBe('trusted')
    expect(await subjects()).toEqual(['CN=new CA', 'CN=old CA'])
    await rotation.tick(now + 6 * DAY)
    expect(await subjects()).toEqual(['CN=new CA', 'CN=old CA'])
    await rotation.tick(now + 7 * DAY + 1)
    expect(await subjects()).toEqual(['CN=new CA'])
    // Asked once, at the end, with the pushed bundle alone.
    expect(probes.map((pem) => new X509Certificate(pem).subject)).toEqual(['CN=new CA'])
  })

  it('keeps the old CAs past the end while the broker does not verify under the pushed bundle alone', async () => {
    const now = Date.now()
    expect(await trust(newCa.certPem, 7, now)).toBe('trusted')
    probe = { ok: false, cause: 'the cloud broker certificate is not signed by a CA in cloud.caFile' }
    await rotation.tick(now + 7 * DAY + 1)
    await rotation.tick(now + 7 * DAY + 30_000)
    expect(await subjects()).toEqual(['CN=new CA', 'CN=old CA'])
    expect(options.metrics.get('rotation_trust_overlap_kept_total')).toBe(2)
    // One line an hour, not one per check.
    const kept = lines.filter((l) => String(l.msg).includes('does not verify under the pushed bundle alone'))
    expect(kept).toHaveLength(1)
    expect(kept[0]).toMatchObject({
      level: 40,
      cause: 'the cloud broker certificate is not signed by a CA in cloud.caFile',
    })
    // The broker moved to the new CA: the next check ends the overlap.
    probe = { ok: true }
    await rotation.tick(now + 7 * DAY + 60_000)
    expect(await subjects()).toEqual(['CN=new CA'])
    expect(probes).toHaveLength(3)
  })

  it('a check still waiting for its probe is not queued again by the next health interval', async () => {
    const now = Date.now()
    expect(await trust(newCa.certPem, 7, now)).toBe('trusted')
    let release: () => void = () => undefined
    probeHeld = new Promise((resolve) => {
      release = resolve
    })
    const first = rotation.tick(now + 7 * DAY + 1)
    for (let i = 0; i < 5; i++) await rotation.tick(now + 7 * DAY + 2 + i)
    release()
    await first
    expect(probes).toHaveLength(1)
    expect(await subjects()).toEqual(['CN=new CA'])
  })

  it('leaves a cloud.caFile replaced by hand during the overlap as it is', async () => {
    const now = Date.now()
    expect(await trust(newCa.certPem, 1, now)).toBe('trusted')
    await writeFile(cloud.caFile, oldCa.certPem)
    await rotation.tick(now + 2 * DAY)
    expect(await subjects()).toEqual(['CN=old CA'])
    expect(lines.some((l) => String(l.msg).includes('changed by hand meanwhile'))).toBe(true)
  })

  it('refuses when cloud.caFile cannot be read, and an overlap of 0 days, changing nothing', async () => {
    const now = Date.now()
    await writeFile(cloud.caFile, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')
    expect(await trust(newCa.certPem, 7, now)).toBe('error')
    expect(await readFile(cloud.caFile, 'utf8')).toContain('AAAA')
    await writePublicFile(cloud.caFile, oldCa.certPem)
    expect(await trust(newCa.certPem, 0, now)).toBe('malformed')
    expect(await subjects()).toEqual(['CN=old CA'])
  })

  it('a flood on the rotate topic: past 16 waiting, commands are dropped unread, each a rotation_refused event', async () => {
    const now = Date.now()
    const results = await Promise.all(Array.from({ length: 20 }, () => trust(newCa.certPem, 7, now)))
    expect(results.filter((r) => r === 'busy')).toHaveLength(4)
    const busy = lines.filter((l) => l.event === 'rotation_refused' && l.reason === 'busy')
    expect(busy).toHaveLength(4)
    expect(busy[0]).toMatchObject({ security: true, waiting: 16 })
    expect(busy[0]!.bytes as number).toBeGreaterThan(100)
  })

  it('junk or replays on the rotate topic: each refusal counted, but only 10 in 10 s answered with a signed reply (per operator)', async () => {
    const published: Array<{ topic: string }> = []
    const session = { publish: async (message: { topic: string }) => void published.push(message) }
    rotation = new CertificateRotation({
      ...options,
      link: { session$: new BehaviorSubject(session), clientId: 'gw' } as unknown as CloudLink,
    })
    // One at a time, as commands are handled: the wait limit (busy) is not what holds the replies back.
    for (let i = 0; i < 40; i++) expect(await rotation.handle(randomBytes(1))).toBe('malformed')
    const stranger = generateKeyPairSync('ed25519').privateKey
    const unsigned = signCommand(stranger, operatorKid(stranger), '$gw/gw/rotate', {
      gatewayId: 'gw',
      deviceId: '',
      nonce: randomBytes(16),
      timestamp: Date.now(),
      body: Buffer.from('{}'),
    })
    expect(await rotation.handle(unsigned)).toBe('unknown_kid')
    expect(options.metrics.get('rotation_refused_total{reason="malformed"}')).toBe(40)
    expect(options.metrics.get('rotation_refused_total{reason="unknown_kid"}')).toBe(1)
    expect(published).toHaveLength(10)
    // A command a trusted operator signed is answered whatever came before it.
    expect(await trust('not a bundle', 7, Date.now())).toBe('malformed_bundle')
    expect(published).toHaveLength(11)
    // A signed command seen before, sent again and again: the same bound, for its operator.
    const command = signCommand(operator.privateKey, operatorKid(operator.privateKey), '$gw/gw/rotate', {
      gatewayId: 'gw',
      deviceId: '',
      nonce: randomBytes(16),
      timestamp: Date.now(),
      body: Buffer.from(
        JSON.stringify({
          type: 'trust',
          request: randomBytes(16).toString('hex'),
          bundle: 'x',
          overlapDays: 7,
        }),
      ),
    })
    expect(await rotation.handle(command)).toBe('malformed_bundle')
    for (let i = 0; i < 20; i++) expect(await rotation.handle(command)).toBe('replayed')
    expect(options.metrics.get('rotation_refused_total{reason="replayed"}')).toBe(20)
    expect(published).toHaveLength(12 + 10)
    expect(published.every((m) => m.topic === '$gw/gw/rotation')).toBe(true)
  })

  it('a pushed certificate is tried, written and used as the gateway checked it, encoded again, never as pushed', async () => {
    const tried: Buffer[] = []
    const link = {
      session$: new BehaviorSubject(null),
      clientId: 'gw',
      tryCandidate: async (cert: Buffer, _key: Buffer, _ms: number, beforeAdopt: () => void) => {
        tried.push(cert)
        beforeAdopt()
        return { ok: true }
      },
    }
    rotation = new CertificateRotation({ ...options, link: link as unknown as CloudLink })
    const command = (body: Record<string, unknown>) =>
      signCommand(operator.privateKey, operatorKid(operator.privateKey), '$gw/gw/rotate', {
        gatewayId: 'gw',
        deviceId: '',
        nonce: randomBytes(16),
        timestamp: Date.now(),
        body: Buffer.from(JSON.stringify({ request: randomBytes(16).toString('hex'), ...body })),
      })
    expect(await rotation.handle(command({ type: 'csr-request' }))).toBe('csr')
    const pending = createPrivateKey(await readFile(join(dir, 'state', 'rotation', 'pending.key')))
    const csr = checkCsr(createCsr(pending.export({ type: 'pkcs8', format: 'pem' }).toString(), 'gw'), 'gw')
    if ('problem' in csr) throw new Error(csr.problem)
    const issued = issueFromCsr(oldCa, csr, 30)
    // The same certificate as an operator's tool might paste it: CRLF line ends, blank lines around.
    const pushed = `\r\n\r\n${issued.replaceAll('\n', '\r\n')}\r\n\r\n`
    expect(await rotation.handle(command({ type: 'certificate', certificate: pushed }))).toBe('applied')
    const checked = new X509Certificate(issued).toString()
    expect(tried.map((b) => b.toString())).toEqual([checked])
    expect(await readFile(cloud.certFile, 'utf8')).toBe(checked)
  })

  it('past 100,000 remembered nonces a command is refused as too_many_nonces, changing nothing; taken once they expire', async () => {
    const now = Date.now()
    rotation = new CertificateRotation({
      ...options,
      nonces: await CommandNonces.open(await prefilledNonces(dir, 'full', 100_000, now + 60_000)),
    })
    expect(await trust(newCa.certPem, 7, now)).toBe('too_many_nonces')
    expect(await subjects()).toEqual(['CN=old CA'])
    expect(lines.filter((l) => l.event === 'rotation_refused')).toEqual([
      expect.objectContaining({ reason: 'too_many_nonces', operator: 'ops' }),
    ])
    // A minute later the 100,000 have expired: the next command is taken.
    expect(await trust(newCa.certPem, 7, now + 60_001)).toBe('trusted')
    expect(await subjects()).toEqual(['CN=new CA', 'CN=old CA'])
  })
})
