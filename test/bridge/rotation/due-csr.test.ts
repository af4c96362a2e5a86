import { generateKeyPairSync } from 'node:crypto'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { BehaviorSubject } from 'rxjs'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { CloudLink } from '../../../bridge/cloud-link.js'
import { CloudProtector } from '../../../bridge/cloud-protector.js'
import type { OutboundMessage } from '../../../bridge/cloud-session.js'
import { CommandNonces } from '../../../bridge/command-nonces.js'
import { ControlTopics, GatewayCertificate } from '../../../bridge/control.js'
import { CertificateRotation } from '../../../bridge/rotation/rotation.js'
import type { CloudConfig } from '../../../config/index.js'
import { createLogger } from '../../../core/logger.js'
import { Metrics } from '../../../core/metrics.js'
import { SecurityEvents } from '../../../core/security-events.js'
import {
  createCertificateAuthority,
  issueCertificate,
  writePublicFile,
  writeSecretFile,
} from '../../../pki/index.js'
import { makeTempDir, removeDir } from '../../helpers/tmp.js'

const DAY = 86_400_000
const ca = createCertificateAuthority({ commonName: 'CA' })
// Ten days left: inside the 30 days of cloud.rotation.leadDays.
const client = issueCertificate(ca, { commonName: 'gw', kind: 'client', validDays: 10 })

/**
 * docs/rotation.md: within `cloud.rotation.leadDays` of its certificate's end, the gateway
 * publishes a CSR by itself, once a day while the link is up; the day is counted on the monotonic
 * clock, so a step of the wall clock (a Pi's NTP sync) neither holds the next one back nor sends
 * one early.
 */
describe('CertificateRotation: the CSR a certificate near its end asks for by itself', () => {
  let dir: string
  let rotation: CertificateRotation
  let metrics: Metrics
  const published: OutboundMessage[] = []

  beforeEach(async () => {
    vi.useFakeTimers({ now: Date.now(), toFake: ['Date', 'performance'] })
    dir = await makeTempDir('edge-gw-due-csr-')
    const cloud = {
      caFile: join(dir, 'trust.pem'),
      certFile: join(dir, 'gw.pem'),
      keyFile: join(dir, 'gw.key'),
      rotation: { leadDays: 30, deadlineSeconds: 5, warnDays: [30] },
    } as CloudConfig
    await writePublicFile(cloud.caFile, ca.certPem)
    await writePublicFile(cloud.certFile, client.certPem)
    await writeSecretFile(cloud.keyFile, client.keyPem)
    published.length = 0
    const session = {
      closed: false,
      publish: async (message: OutboundMessage) => {
        published.push(message)
      },
    }
    metrics = new Metrics()
    const logger = createLogger({
      level: 'silent',
      destination: new Writable({ write: (_c, _e, done) => done() }),
    })
    rotation = new CertificateRotation({
      cloud,
      gatewayId: 'gw',
      stateDir: join(dir, 'state'),
      control: new ControlTopics('$gw', 'gw'),
      operators: [],
      nonces: await CommandNonces.open(join(dir, 'nonces')),
      maxAgeSeconds: 300,
      certificate: await GatewayCertificate.load(cloud),
      link: { session$: new BehaviorSubject(session), clientId: 'gw' } as unknown as CloudLink,
      protector: new CloudProtector('gw', generateKeyPairSync('ed25519').privateKey, new Map()),
      security: new SecurityEvents(logger, metrics),
      metrics,
      logger,
    })
  })
  afterEach(async () => {
    vi.useRealTimers()
    await removeDir(dir)
  })

  const csrs = () => published.filter((m) => m.topic === '$gw/gw/rotation').length

  it('publishes one at once, then one a day, on the monotonic clock', async () => {
    await rotation.tick()
    expect(csrs()).toBe(1)
    expect(metrics.get('rotation_csr_published_total')).toBe(1)
    vi.advanceTimersByTime(DAY - 1_000)
    await rotation.tick()
    expect(csrs()).toBe(1)
    vi.advanceTimersByTime(2_000)
    await rotation.tick()
    expect(csrs()).toBe(2)
    // NTP steps the clock back two days: a day later the next one still goes.
    vi.setSystemTime(Date.now() - 2 * DAY)
    vi.advanceTimersByTime(DAY + 1_000)
    await rotation.tick()
    expect(csrs()).toBe(3)
    // And a step forward does not send one early.
    vi.setSystemTime(Date.now() + 5 * DAY)
    await rotation.tick()
    expect(csrs()).toBe(3)
  })
})
