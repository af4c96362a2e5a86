import { createPublicKey } from 'node:crypto'
import { join } from 'node:path'
import type { BridgeOptions } from '../bridge/bridge.js'
import { CloudProtector } from '../bridge/cloud-protector.js'
import { CommandNonces } from '../bridge/command-nonces.js'
import { GatewayCertificate } from '../bridge/control.js'
import { Downlink, type DownlinkSink, type Operator } from '../bridge/downlink.js'
import { operatorKid } from '../bridge/envelope.js'
import { loadOrCreateSigningKey, readRawKey, readSignaturePublicKey } from '../bridge/keys.js'
import { ExpiryWatch } from '../bridge/rotation/expiry.js'
import { recoverRotation } from '../bridge/rotation/rotation.js'
import type { GatewayConfig } from '../config/index.js'
import type { Logger } from '../core/logger.js'
import type { Metrics } from '../core/metrics.js'
import type { SecurityEvents } from '../core/security-events.js'
import type { HpkeSealRecipient } from '../crypto/hpke-format.js'

export interface CloudRuntime {
  protector: CloudProtector
  certificate: GatewayCertificate
  downlink?: Downlink
  rotation: NonNullable<BridgeOptions['rotation']>
  expiry: ExpiryWatch
}

async function readOperators(
  list: ReadonlyArray<{ name: string; publicKeyFile: string }>,
  path: string,
): Promise<Operator[]> {
  const operators: Operator[] = []
  for (const [i, o] of list.entries()) {
    const publicKey = await readSignaturePublicKey(o.publicKeyFile, `${path}[${i}].publicKeyFile`)
    operators.push({ name: o.name, kid: operatorKid(publicKey), key: publicKey })
  }
  return operators
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
  const recovered = await recoverRotation(cloud, gateway.stateDir)
  if (recovered !== 'none') {
    logger.warn(
      { module: 'rotation', recovered },
      recovered === 'finished'
        ? 'finished a certificate rotation that a crash cut short: cloud.certFile and cloud.keyFile hold the new pair'
        : 'a certificate rotation was cut short before it was installed: going on with the certificate in cloud.certFile; the operator can push it again',
    )
  }
  const certificate = await GatewayCertificate.load(cloud)
  const expiry = new ExpiryWatch(config, certificate, metrics, logger.child({ module: 'expiry' }))
  const downlinkOperators = await readOperators(cloud.downlink?.operators ?? [], 'cloud.downlink.operators')
  const rotationOperators = cloud.rotation.operators
    ? await readOperators(cloud.rotation.operators, 'cloud.rotation.operators')
    : downlinkOperators
  // Opened last: an operator key that cannot be read stops the start before the journal's handle is open.
  const noncesFile = join(gateway.stateDir, 'downlink-nonces')
  const nonces = await CommandNonces.open(noncesFile)
  const ahead = nonces.floorAhead()
  if (ahead !== undefined) logger.warn({ module: 'downlink', file: noncesFile }, ahead)
  const rotation = {
    operators: rotationOperators,
    nonces,
    maxAgeSeconds: cloud.downlink?.maxAgeSeconds ?? 300,
    stateDir: gateway.stateDir,
    security,
  }
  if (!cloud.downlink) return { protector, certificate, rotation, expiry }
  const downlink = new Downlink(
    cloud.downlink,
    gateway.id,
    downlinkOperators,
    nonces,
    sink,
    security,
    metrics,
    logger.child({ module: 'downlink' }),
  )
  return { protector, certificate, downlink, rotation, expiry }
}
