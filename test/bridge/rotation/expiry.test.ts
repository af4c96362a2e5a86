import { join } from 'node:path'
import { Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { GatewayCertificate } from '../../../bridge/control.js'
import { ExpiryWatch } from '../../../bridge/rotation/expiry.js'
import type { GatewayConfig } from '../../../config/index.js'
import { createLogger } from '../../../core/logger.js'
import { Metrics } from '../../../core/metrics.js'
import {
  createCertificateAuthority,
  issueCertificate,
  writePublicFile,
  writeSecretFile,
} from '../../../pki/index.js'
import { makeTempDir, removeDir } from '../../helpers/tmp.js'

const DAY = 86_400_000

describe('ExpiryWatch: every certificate the gateway uses, its days left, warnings at the thresholds', () => {
  let dir: string
  let config: GatewayConfig
  const lines: Array<Record<string, unknown>> = []

  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-expiry-')
    const ca = createCertificateAuthority({ commonName: 'cloud CA', validDays: 400 })
    const client = issueCertificate(ca, { commonName: 'gw', kind: 'client', validDays: 10 })
    const lanCa = createCertificateAuthority({ commonName: 'lan CA', validDays: 100 })
    const listener = issueCertificate(lanCa, { commonName: 'gateway.lan', kind: 'server', validDays: 50 })
    const at = (f: string) => join(dir, f)
    await writePublicFile(at('ca.pem'), ca.certPem)
    await writePublicFile(at('gw.pem'), client.certPem)
    await writeSecretFile(at('gw.key'), client.keyPem)
    await writePublicFile(at('lan-ca.pem'), lanCa.certPem)
    await writePublicFile(at('lan.pem'), listener.certPem)
    await writeSecretFile(at('signing.key'), 'not read, only its age')
    config = {
      cloud: {
        caFile: at('ca.pem'),
        certFile: at('gw.pem'),
        keyFile: at('gw.key'),
        signing: { keyFile: at('signing.key') },
        rotation: { warnDays: [30, 7, 1] },
      },
      lan: {
        listeners: [
          { type: 'tcp', host: '127.0.0.1', port: 1 },
          {
            type: 'tls',
            name: 'secure',
            certFile: at('lan.pem'),
            keyFile: at('gw.key'),
            caFile: at('lan-ca.pem'),
          },
        ],
      },
    } as unknown as GatewayConfig
  })
  afterAll(async () => removeDir(dir))

  it('lists each certificate with its days left, sets the gauges and warns once per threshold crossed', async () => {
    const metrics = new Metrics()
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line))
        done()
      },
    })
    const logger = createLogger({ level: 'info', destination })
    const watch = new ExpiryWatch(config, await GatewayCertificate.load(config.cloud), metrics, logger)
    const now = Date.now()
    const entries = await watch.refresh(now)
    expect(entries.map((e) => [e.use, e.daysLeft, e.warning])).toEqual([
      ['cloud client', 9, true],
      ['cloud CA', 399, false],
      ['lan listener secure', 49, false],
      ['lan listener secure CA', 99, false],
      ['signing key', undefined, false],
    ])
    expect(entries.at(-1)?.ageDays).toBe(0)
    expect(metrics.get('certificate_days_left{use="cloud_client"}')).toBe(9)
    expect(metrics.get('certificate_days_left{use="lan_listener"}')).toBe(49)
    expect(metrics.get('certificate_days_left{use="cloud_ca"}')).toBe(399)
    const warnings = () => lines.filter((l) => l.level === 40).map((l) => l.msg as string)
    expect(warnings()).toEqual([
      expect.stringMatching(/^the cloud client certificate \(.*gw\.pem\) expires in 9 day\(s\)/),
    ])
    await watch.refresh(now + DAY)
    expect(warnings()).toHaveLength(1)
    await watch.refresh(now + 3 * DAY)
    expect(warnings()).toHaveLength(2)
    expect(warnings()[1]).toMatch(/expires in 6 day\(s\)/)
    await watch.refresh(now + 12 * DAY)
    expect(warnings()[2]).toMatch(/^the cloud client certificate .* expired on /)
    expect(metrics.get('certificate_days_left{use="cloud_client"}')).toBe(-3)
  })
})
