import { join } from 'node:path'
import { stringify } from 'yaml'
import { parseConfig } from '../../../config/index.js'
import { createLogger } from '../../../core/logger.js'
import { Metrics } from '../../../core/metrics.js'
import { SecurityEvents } from '../../../core/security-events.js'
import { hashPassword, LanGateway, loadAccess, type UplinkMessage } from '../../../gateway/index.js'
import {
  createCertificateAuthority,
  issueCertificate,
  writePublicFile,
  writeSecretFile,
} from '../../../pki/index.js'
import { makeTempDir, removeDir } from '../../helpers/tmp.js'
import { LogCapture, PASSWORD_DEVICE, PSK_DEVICE } from '../../integration/harness.js'

export { PASSWORD_DEVICE, PSK_DEVICE }
export const CERT_DEVICE = 'cert-dev'
/** The cloud section the schema requires, for tests of the LAN side: never connected to. */
export const UNUSED_CLOUD = {
  host: '127.0.0.1',
  caFile: 'unused.pem',
  certFile: 'unused.pem',
  keyFile: 'unused.key',
  topics: [{ local: 'devices/', cloud: 'gw/devices/' }],
}
/** A device the attack tests use as a compromised one (TLS-PSK, so logging in costs no scrypt). */
export const ROGUE_DEVICE = { id: 'rogue', identity: 'rogue', keyHex: '5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a' }

/** Files for a `tls` listener and a device certificate, all under one CA. */
export interface CertFiles {
  caFile: string
  serverCert: string
  serverKey: string
  deviceCert: string
  deviceKey: string
}

/**
 * The LAN side of the gateway on loopback, started from a config that goes
 * through the real parser (schema defaults, cross-field checks): a plain, a
 * TLS-PSK and a `tls` listener, the PSK, password and certificate devices of
 * the integration harness. The uplink records what the broker accepted for the
 * cloud (these tests are about the LAN; the cloud side is not involved).
 */
export class LanFixture {
  private constructor(
    readonly dir: string,
    readonly lan: LanGateway,
    readonly metrics: Metrics,
    readonly logs: LogCapture,
    readonly offers: UplinkMessage[],
    readonly certs: CertFiles,
  ) {}

  static async start(lan: Record<string, unknown> = {}): Promise<LanFixture> {
    const dir = await makeTempDir('edge-gw-proto-')
    const certs = await mintCerts(dir)
    const pskFile = join(dir, 'psk-dev.psk')
    await writeSecretFile(pskFile, `${PSK_DEVICE.keyHex}\n`)
    const rogueFile = join(dir, 'rogue.psk')
    await writeSecretFile(rogueFile, `${ROGUE_DEVICE.keyHex}\n`)
    const input = {
      gateway: { id: 'gw-proto', stateDir: 'state' },
      lan: {
        listeners: [
          { name: 'plain', type: 'tcp', host: '127.0.0.1', port: 0 },
          { name: 'psk', type: 'tls-psk', host: '127.0.0.1', port: 0 },
          {
            name: 'mtls',
            type: 'tls',
            host: '127.0.0.1',
            port: 0,
            certFile: certs.serverCert,
            keyFile: certs.serverKey,
            caFile: certs.caFile,
          },
        ],
        lockout: { maxFailures: 1000, refusalDelayMs: 0 },
        // These tests publish as fast as a client can: the per-device rate (100/s by default) is
        // not what they measure, and a fast machine would hit it (tests/integration/device-rate.test.ts does).
        deviceRate: { messagesPerSecond: 1_000_000, burst: 1_000_000 },
        ...lan,
      },
      devices: [
        {
          id: PSK_DEVICE.id,
          psk: { identity: PSK_DEVICE.identity, keyFile: pskFile },
          clientIds: ['psk-dev*'],
        },
        {
          id: PASSWORD_DEVICE.id,
          username: PASSWORD_DEVICE.username,
          passwordHash: await hashPassword(PASSWORD_DEVICE.password),
          clientIds: ['pass-dev*'],
        },
        { id: CERT_DEVICE, certificate: { commonName: CERT_DEVICE } },
        { id: ROGUE_DEVICE.id, psk: { identity: ROGUE_DEVICE.identity, keyFile: rogueFile } },
      ],
      // Required by the schema; never connected to here.
      cloud: UNUSED_CLOUD,
    }
    const file = join(dir, 'gateway.yaml')
    const config = parseConfig(stringify(input), { file, baseDir: dir })
    const logs = new LogCapture()
    const logger = createLogger({ level: 'debug', destination: logs })
    const metrics = new Metrics()
    const security = new SecurityEvents(logger.child({ module: 'security' }), metrics)
    const offers: UplinkMessage[] = []
    const access = await loadAccess(config)
    const gateway = await LanGateway.start({
      lan: config.lan,
      stateDir: config.gateway.stateDir,
      access,
      uplink: {
        offer: (message) => {
          offers.push(message)
          return 'accepted'
        },
      },
      logger: logger.child({ module: 'gateway' }),
      metrics,
      security,
    })
    return new LanFixture(dir, gateway, metrics, logs, offers, certs)
  }

  port(type: 'tcp' | 'tls-psk' | 'tls'): number {
    const listener = this.lan.listener(type)
    if (!listener) throw new Error(`no ${type} listener`)
    return listener.port
  }

  /** Connections open on all listeners (TLS handshakes in progress included). */
  async connections(): Promise<number> {
    const counts = await Promise.all(this.lan.listeners.map((l) => l.connections()))
    return counts.reduce((a, b) => a + b, 0)
  }

  /** `lan_protocol_errors_total` by reason, every reason (zeros included). */
  protocolErrors(): Record<string, number> {
    const out: Record<string, number> = {}
    for (const [name, value] of Object.entries(this.metrics.snapshot())) {
      const m = /^lan_protocol_errors_total\{reason="([a-z_0-9]+)"\}$/.exec(name)
      if (m) out[m[1]!] = value
    }
    return out
  }

  async stop(): Promise<void> {
    await this.lan.close().catch(() => undefined)
    await removeDir(this.dir)
  }
}

async function mintCerts(dir: string): Promise<CertFiles> {
  const ca = createCertificateAuthority({ commonName: 'proto test CA' })
  const files: CertFiles = {
    caFile: join(dir, 'ca.pem'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server.key'),
    deviceCert: join(dir, 'device.pem'),
    deviceKey: join(dir, 'device.key'),
  }
  await writePublicFile(files.caFile, ca.certPem)
  const server = issueCertificate(ca, { commonName: 'server', kind: 'server', altNames: ['127.0.0.1'] })
  await writePublicFile(files.serverCert, server.certPem)
  await writeSecretFile(files.serverKey, server.keyPem)
  const device = issueCertificate(ca, { commonName: CERT_DEVICE, kind: 'client' })
  await writePublicFile(files.deviceCert, device.certPem)
  await writeSecretFile(files.deviceKey, device.keyPem)
  return files
}
