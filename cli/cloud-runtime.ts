import { createPublicKey } from 'node:crypto'
import { join } from 'node:path'
import { CloudProtector } from '../bridge/cloud-protector.js'
import { CommandNonces } from '../bridge/command-nonces.js'
import { GatewayCertificate } from '../bridge/control.js'
import { Downlink, type DownlinkSink, type Operator } from '../bridge/downlink.js'
import { operatorKid } from '../bridge/envelope.js'
import { loadOrCreateSigningKey, readRawKey, readSignaturePublicKey } from '../bridge/keys.js'
import type { GatewayConfig } from '../config/index.js'
import type { Logger } from '../core/logger.js'
import type { Metrics } from '../core/metrics.js'
import type { SecurityEvents } from '../core/security-events.js'
import type { HpkeSealRecipient } from '../crypto/hpke-format.js'

export interface CloudRuntime {
  protector: CloudProtector
  certificate: GatewayCertificate
  downlink?: Downlink
}

/**
 * What the bridge needs besides the link: the signing key (made on first
 * start), the HPKE recipients, the certificate for the key binding, and the
 * downlink verifier with its operators and remembered nonces. The LAN sink is
 * given later (the LAN broker starts after the bridge).
 */
export async function loadCloudRuntime(
  config: Readonly<GatewayConfig>,
  logger: Logger,
  metrics: Metrics,
  security: SecurityEvents,
  sink: DownlinkSink,
): Promise<CloudRuntime> {
  const { cloud, gateway } = config
  const signingFile = cloud.signing.keyFile ?? join(gateway.stateDir, 'signing.key')
  const { key, created } = await loadOrCreateSigningKey(signingFile)
  const recipients = new Map<string, HpkeSealRecipient>()
  for (const [i, r] of cloud.recipients.entries()) {
    recipients.set(r.name, {
      kid: Buffer.from(r.kid ?? r.name, 'utf8'),
      publicKey: await readRawKey(r.publicKeyFile, `cloud.recipients[${i}].publicKeyFile`),
    })
  }
  const protector = new CloudProtector(gateway.id, key, recipients)
  logger.info(
    {
      module: 'bridge',
      signingKeyFile: signingFile,
      kid: protector.kid.toString('hex'),
      publicKey: createPublicKey(key).export({ type: 'spki', format: 'der' }).toString('base64'),
    },
    created ? 'made a new gateway signing key' : 'gateway signing key loaded',
  )
  const certificate = await GatewayCertificate.load(cloud)
  const expiry = certificate.status()
  if (expiry.daysLeft < 30) {
    logger.warn(
      { module: 'bridge', ...expiry },
      `the gateway certificate expires in ${expiry.daysLeft} day(s)`,
    )
  }
  if (!cloud.downlink) return { protector, certificate }
  const operators: Operator[] = []
  for (const [i, o] of cloud.downlink.operators.entries()) {
    const publicKey = await readSignaturePublicKey(
      o.publicKeyFile,
      `cloud.downlink.operators[${i}].publicKeyFile`,
    )
    operators.push({ name: o.name, kid: operatorKid(publicKey), key: publicKey })
  }
  const nonces = await CommandNonces.open(join(gateway.stateDir, 'downlink-nonces.json'))
  const downlink = new Downlink(
    cloud.downlink,
    gateway.id,
    operators,
    nonces,
    sink,
    security,
    metrics,
    logger.child({ module: 'downlink' }),
  )
  return { protector, certificate, downlink }
}
