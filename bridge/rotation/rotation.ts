import { createHash, createPrivateKey, generateKeyPair, type KeyObject, X509Certificate } from 'node:crypto'
import { readFile, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { CloudConfig } from '../../config/index.js'
import { LogLimiter } from '../../core/log-limiter.js'
import type { Logger } from '../../core/logger.js'
import { type Metrics, series } from '../../core/metrics.js'
import type { SecurityEvents } from '../../core/security-events.js'
import { writeAtomically, writeSecretFile } from '../../pki/files.js'
import type { CloudLink } from '../cloud-link.js'
import type { CloudProtector } from '../cloud-protector.js'
import type { CommandNonces } from '../command-nonces.js'
import type { ControlTopics, GatewayCertificate } from '../control.js'
import type { Operator } from '../downlink.js'
import { verifyCommand } from '../envelope.js'
import { type CertificateRefusal, checkPushedBundle, checkPushedCertificate, readBundle } from './check.js'
import { GATEWAY_ITSELF, parseRotationCommand, type RotationCommand, type RotationReply } from './messages.js'

const generateKeyPairAsync = promisify(generateKeyPair)

/** Rotation commands waiting to be handled, at most (one is handled at a time). */
const MAX_WAITING = 16
/** Refusals before a command is taken (its nonce fresh) that are answered: 10 in each 10 s, per operator. */
const REFUSAL_REPLIES = { burst: 10, windowMs: 10_000 }

/** Why a rotation command was refused or rolled back; stable strings for metrics and security events. */
export const ROTATION_REFUSALS = [
  'malformed',
  'oversize',
  'unknown_kid',
  'bad_signature',
  'wrong_gateway',
  'stale',
  'replayed',
  'too_many_nonces',
  'busy',
  'no_pending_request',
  'malformed_certificate',
  'key_mismatch',
  'wrong_ca',
  'not_yet_valid',
  'expired',
  'wrong_key_usage',
  'wrong_subject',
  'malformed_bundle',
  'not_a_ca',
  'connection_failed',
  'write_failed',
  'not_supported',
  'bad_sealed_key',
  'unknown_device',
  'not_psk',
  'in_overlap',
  'bad_identity',
  'identity_taken',
  'key_file_exists',
  'invalid_config',
  'not_payload',
  'policy',
  'topic_protected',
  'bad_topic',
  'topic_writable',
  'sequence_unavailable',
  'error',
] as const

export type RotationRefusal = (typeof ROTATION_REFUSALS)[number]

/** Applies a device's new PSK to the gateway's config (cli/app.ts: what `device rotate` does). */
export interface DeviceCredentials {
  rotatePsk(
    deviceId: string,
    key: Buffer,
    options: { identity?: string; overlapHours: number },
  ): Promise<
    | { identity: string; previousIdentity: string; until: string }
    | { refused: RotationRefusal; detail: string }
  >
  /**
   * Gives a payload device a new master secret under a new kid, the old key accepted for the
   * overlap, and hands the new key to the device sealed under its old one, retained on `topic`.
   */
  rotatePayloadKey(
    deviceId: string,
    topic: string,
    options: { overlapHours: number },
  ): Promise<
    { kid: string; previousKid: string; until: string } | { refused: RotationRefusal; detail: string }
  >
}

export interface RotationOptions {
  cloud: CloudConfig
  gatewayId: string
  stateDir: string
  control: ControlTopics
  /** Whose signatures make a rotation command acceptable; none: every command is refused. */
  operators: readonly Operator[]
  /** Shared with the downlink: a nonce is accepted once, whatever it came with. */
  nonces: CommandNonces
  /** Commands signed further than this from the gateway's clock are stale. */
  maxAgeSeconds: number
  certificate: GatewayCertificate
  /** Where a pushed device PSK goes; without it such a push is refused (`not_supported`). */
  devices?: DeviceCredentials
  link: CloudLink
  protector: CloudProtector
  security: SecurityEvents
  metrics: Metrics
  logger: Logger
}

/** The files of a rotation under `<stateDir>/rotation/` (docs/rotation.md). */
export function rotationFiles(stateDir: string): {
  dir: string
  pendingKey: string
  staged: string
  trust: string
} {
  const dir = join(stateDir, 'rotation')
  return {
    dir,
    /** The key the pending CSR is for (0600); it never leaves the gateway. */
    pendingKey: join(dir, 'pending.key'),
    /** The pushed certificate while it is being tried and installed. */
    staged: join(dir, 'next.pem'),
    /** A pushed CA bundle's overlap: what cloud.caFile becomes when it ends. */
    trust: join(dir, 'trust.json'),
  }
}

async function readIfThere(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

async function modeOf(file: string, fallback: number): Promise<number> {
  try {
    return (await stat(file)).mode & 0o777
  } catch {
    return fallback
  }
}

interface Verified {
  command: RotationCommand
  operator: string
}

/**
 * Certificate rotation pushed from the cloud (docs/rotation.md). The gateway makes its new key
 * itself and publishes a CSR for it, signed with its bound signing key; a certificate pushed for
 * that CSR is applied only after every check passes, over a second connection that must come up
 * before the uplink moves to it; the files are written once it has. A CA bundle pushed for the
 * broker is kept beside the old one for the overlap asked. Every refusal and rollback is a
 * security event and a signed reply; one command is handled at a time.
 */
export class CertificateRotation {
  private chain: Promise<unknown> = Promise.resolve()
  private readonly files: ReturnType<typeof rotationFiles>
  /** When the last due CSR went out, on the monotonic clock (a wall-clock step must not hold the next one back). */
  private lastDueCsr = Number.NEGATIVE_INFINITY
  /** A periodic check is queued or running. */
  private ticking = false
  /** One line an hour while an ended overlap is kept (checked at every health interval). */
  private readonly overlapLines = new LogLimiter(1, 3_600_000)
  private waiting = 0
  private readonly refusalReplies = new LogLimiter(REFUSAL_REPLIES.burst, REFUSAL_REPLIES.windowMs)

  constructor(private readonly options: RotationOptions) {
    this.files = rotationFiles(options.stateDir)
    options.metrics.declare('rotation_applied_total')
    options.metrics.declare('rotation_trusted_total')
    options.metrics.declare('rotation_trust_overlap_kept_total')
    options.metrics.declare('rotation_csr_published_total')
    for (const reason of ROTATION_REFUSALS) {
      options.metrics.declare(series('rotation_refused_total', { reason }))
    }
  }

  /** Handles a command received on the rotate topic; resolves with what came of it. */
  handle(bytes: Buffer, now = Date.now()): Promise<string> {
    // Commands wait their turn; past MAX_WAITING (a flood on the rotate topic) they are dropped unread.
    if (this.waiting >= MAX_WAITING) {
      this.options.metrics.increment(series('rotation_refused_total', { reason: 'busy' }))
      // Reported (its log lines limited per event, as every security event's), never answered: a
      // reply to each would let a flood make the gateway publish as fast as it is sent commands.
      this.options.security.report(
        'rotation_refused',
        { reason: 'busy', bytes: bytes.length, waiting: this.waiting },
        `rotation command dropped unread: ${MAX_WAITING} commands already wait their turn`,
      )
      return Promise.resolve('busy')
    }
    this.waiting++
    const next = this.chain.then(() => this.process(bytes, now)).finally(() => this.waiting--)
    this.chain = next.catch(() => undefined)
    return next
  }

  private async process(bytes: Buffer, now: number): Promise<string> {
    const verified = await this.verify(bytes, now)
    if ('refused' in verified) {
      // Anyone who can publish on the rotate topic can send these, junk or a signed command seen
      // before (replayed, stale): 10 in each 10 s are answered, per operator whose signature
      // verified and for the rest together, so a flood does not make the gateway publish a signed
      // reply for each (each is still counted and reported).
      const key = verified.operator === undefined ? 'unverified' : `operator:${verified.operator}`
      const answer = this.refusalReplies.take(key) !== undefined
      return this.refuse(verified.refused, verified.detail, null, verified.operator, answer)
    }
    const { command, operator } = verified
    try {
      switch (command.type) {
        case 'csr-request':
          await this.publishCsr(command.request, 'requested')
          return 'csr'
        case 'certificate':
          return await this.applyCertificate(command.request, command.certificate, operator)
        case 'trust':
          return await this.applyTrust(command.request, command.bundle, command.overlapDays, operator, now)
        case 'device-psk':
        case 'device-key': {
          const devices = this.options.devices
          if (!devices) {
            const detail = 'this gateway runs without a config file it can rewrite'
            return this.refuse('not_supported', detail, command.request, operator)
          }
          return command.type === 'device-psk'
            ? await this.applyDevicePsk(command, operator, devices)
            : await this.applyDeviceKey(command, operator, devices)
        }
      }
    } catch (err) {
      // A fault of the gateway's own (a state file it cannot read or write): said, not swallowed.
      this.options.logger.error({ err, request: command.request }, 'rotation command failed')
      return this.refuse('error', (err as Error).message, command.request, operator)
    }
  }

  private async verify(
    bytes: Buffer,
    now: number,
  ): Promise<Verified | { refused: RotationRefusal; detail: string; operator?: string }> {
    let operator: Operator | undefined
    const verified = verifyCommand(
      (kid) => {
        operator = this.options.operators.find((o) => o.kid.equals(kid))
        return operator?.key
      },
      this.options.control.rotate,
      bytes,
    )
    if ('failure' in verified) {
      const f = verified.failure
      const refused: RotationRefusal =
        f === 'oversize' || f === 'unknown_kid' || f === 'bad_signature' ? f : 'malformed'
      return { refused, detail: `the command is not signed by a trusted operator (${f})` }
    }
    const name = operator?.name ?? '?'
    const { command } = verified
    if (command.gatewayId !== this.options.gatewayId || command.deviceId !== GATEWAY_ITSELF) {
      return { refused: 'wrong_gateway', detail: `addressed to ${command.gatewayId}`, operator: name }
    }
    const window = this.options.maxAgeSeconds * 1000
    if (Math.abs(now - command.timestamp) > window) {
      return {
        refused: 'stale',
        detail: `signed ${new Date(command.timestamp).toISOString()}, more than ${this.options.maxAgeSeconds} s from the gateway's clock`,
        operator: name,
      }
    }
    const body = parseRotationCommand(command.body)
    if (!body) return { refused: 'malformed', detail: 'the body is not a rotation command', operator: name }
    const remembered = await this.options.nonces.remember(command.nonce, command.timestamp + window, now)
    if (remembered === 'replayed') return { refused: 'replayed', detail: 'nonce seen before', operator: name }
    if (remembered === 'full')
      return { refused: 'too_many_nonces', detail: 'nonce store full', operator: name }
    return { command: body, operator: name }
  }

  /** The pending key: the one on disk, or a new RSA 2048 key written there (0600). */
  private async pendingKey(): Promise<{ pem: string; key: KeyObject }> {
    const existing = await readIfThere(this.files.pendingKey)
    if (existing !== undefined) {
      const key = createPrivateKey(existing)
      // A pending key equal to the key in use would rotate nothing (a rotation cut short after install).
      const inUse = this.options.certificate.certificate.checkPrivateKey(key)
      if (!inUse) return { pem: existing, key }
    }
    const { privateKey } = await generateKeyPairAsync('rsa', { modulusLength: 2048, publicExponent: 0x10001 })
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
    await writeSecretFile(this.files.pendingKey, pem)
    return { pem, key: privateKey }
  }

  /** Publishes a CSR for the pending key (made now if there is none). */
  private async publishCsr(request: string | null, reason: 'requested' | 'due'): Promise<void> {
    const { pem } = await this.pendingKey()
    // node-forge is loaded only here, when a CSR is made: a gateway that never rotates never loads it.
    const { createCsr } = await import('../../pki/csr.js')
    const csr = createCsr(pem, this.options.gatewayId)
    this.options.metrics.increment('rotation_csr_published_total')
    this.options.logger.info(
      { request, reason },
      reason === 'due'
        ? 'the gateway certificate is due for rotation: published a CSR for a new key'
        : 'published a CSR for a new key, as an operator asked',
    )
    this.reply({ state: 'csr', request, reason, csr })
  }

  private async applyCertificate(request: string, pushed: string, operator: string): Promise<string> {
    const { cloud, gatewayId, link, certificate, logger } = this.options
    const pendingPem = await readIfThere(this.files.pendingKey)
    if (pendingPem === undefined) {
      return this.refuse('no_pending_request', 'no CSR is pending: ask for one first', request, operator)
    }
    const pendingKey = createPrivateKey(pendingPem)
    let issuers: ReturnType<typeof readBundle>
    const issuerFile = cloud.rotation.issuerCaFile ?? cloud.caFile
    try {
      issuers = readBundle(await readFile(issuerFile, 'utf8'))
    } catch {
      issuers = undefined
    }
    const checked = checkPushedCertificate(pushed, pendingKey, issuers ?? [], gatewayId)
    if ('refused' in checked) {
      return this.refuse(checked.refused satisfies CertificateRefusal, checked.detail, request, operator)
    }
    const next = checked.certificate
    // What is tried, written and used is the certificate that was checked, encoded again: never the pushed text.
    const pem = next.toString()
    const old = { cert: certificate.certificate, key: await readFile(cloud.keyFile) }
    const oldCertPem = await readFile(cloud.certFile)
    await writeAtomically(this.files.staged, pem, 0o644)
    logger.info(
      { request, operator, serial: next.serialNumber, notAfter: new Date(next.validTo).toISOString() },
      'rotation: the pushed certificate passed every check; trying it on a second cloud connection',
    )
    const deadlineMs = cloud.rotation.deadlineSeconds * 1000
    const tried = await link.tryCandidate(Buffer.from(pem), Buffer.from(pendingPem), deadlineMs, () =>
      certificate.replace(next, pendingKey),
    )
    if (!tried.ok) {
      await rm(this.files.staged, { force: true })
      return this.rollBack('connection_failed', tried.cause, request, operator)
    }
    try {
      // The key first: a crash between the two renames is finished at the next start (recoverRotation).
      await writeSecretFile(cloud.keyFile, pendingPem)
      await writeAtomically(cloud.certFile, pem, await modeOf(cloud.certFile, 0o644))
    } catch (err) {
      const detail = `the new certificate works but could not be written: ${(err as Error).message}`
      const restored = await writeSecretFile(cloud.keyFile, old.key)
        .then(() => writeAtomically(cloud.certFile, oldCertPem, 0o644))
        .then(
          () => true,
          () => false,
        )
      if (!restored) {
        // The files may hold the new key beside the old certificate: next.pem and pending.key stay,
        // so the next start finishes the install (recoverRotation). The link stays on the new one.
        return this.rollBack(
          'write_failed',
          `${detail}; the old files could not be restored either: the link stays on the new certificate, and the next start completes the install`,
          request,
          operator,
        )
      }
      await rm(this.files.staged, { force: true })
      const back = await link.tryCandidate(oldCertPem, old.key, deadlineMs, () =>
        certificate.replace(old.cert, createPrivateKey(old.key)),
      )
      return this.rollBack(
        'write_failed',
        back.ok
          ? `${detail}; the link is back on the old certificate`
          : `${detail}; the files hold the old certificate, but the link could not move back to it (${back.cause}) and uses the new one until it reconnects`,
        request,
        operator,
      )
    }
    await rm(this.files.staged, { force: true })
    await rm(this.files.pendingKey, { force: true })
    this.options.metrics.increment('rotation_applied_total')
    const notAfter = new Date(next.validTo).toISOString()
    logger.info(
      { request, operator, serial: next.serialNumber, notAfter, clientId: link.clientId },
      `rotation: the cloud link now uses the certificate with serial ${next.serialNumber} (valid until ${notAfter}); written to cloud.certFile and cloud.keyFile`,
    )
    this.reply({
      state: 'applied',
      request,
      serial: next.serialNumber,
      notAfter,
      fingerprint256: next.fingerprint256,
    })
    return 'applied'
  }

  private async applyTrust(
    request: string,
    pem: string,
    overlapDays: number,
    operator: string,
    now: number,
  ): Promise<string> {
    const { cloud, logger } = this.options
    const checked = checkPushedBundle(pem, now)
    if ('refused' in checked) {
      return this.refuse(checked.refused, checked.detail, request, operator)
    }
    const bundle = checked.certificates.map((c) => c.toString()).join('')
    const fingerprints = new Set(checked.certificates.map((c) => c.fingerprint256))
    // The old bundle is kept for the overlap: a bundle that cannot be read is not silently dropped.
    const current = readBundle(await readFile(cloud.caFile, 'utf8').catch(() => ''))
    if (!current) {
      return this.refuse(
        'error',
        `cloud.caFile ${cloud.caFile} cannot be read as PEM certificates: nothing changed`,
        request,
        operator,
      )
    }
    const previous = current
      .filter((c) => !fingerprints.has(c.fingerprint256))
      .map((c) => c.toString())
      .join('')
    const until = previous !== '' ? now + overlapDays * 86_400_000 : null
    const written = `${bundle}${previous}`
    try {
      if (until !== null) {
        // What cloud.caFile holds during the overlap: replaced by hand meanwhile, it is left alone at the end.
        const digest = createHash('sha256').update(written).digest('hex')
        await writeAtomically(this.files.trust, JSON.stringify({ bundle, until, written: digest }), 0o644)
      } else {
        await rm(this.files.trust, { force: true })
      }
      await writeAtomically(cloud.caFile, written, await modeOf(cloud.caFile, 0o644))
    } catch (err) {
      return this.refuse(
        'write_failed',
        `cloud.caFile could not be written: ${(err as Error).message}`,
        request,
        operator,
      )
    }
    this.options.metrics.increment('rotation_trusted_total')
    const overlapUntil = until === null ? null : new Date(until).toISOString()
    logger.info(
      { request, operator, certificates: checked.certificates.length, overlapUntil },
      overlapUntil
        ? `rotation: cloud.caFile now holds the pushed CA bundle and the old one until ${overlapUntil}`
        : 'rotation: cloud.caFile now holds the pushed CA bundle',
    )
    this.reply({ state: 'trusted', request, certificates: checked.certificates.length, overlapUntil })
    return 'trusted'
  }

  private async applyDevicePsk(
    command: Extract<RotationCommand, { type: 'device-psk' }>,
    operator: string,
    devices: DeviceCredentials,
  ): Promise<string> {
    const { request, device } = command
    let key: Buffer
    try {
      key = this.options.certificate.decrypt(Buffer.from(command.sealedKey, 'base64'))
    } catch {
      return this.refuse(
        'bad_sealed_key',
        "the key does not open with the gateway's certificate key",
        request,
        operator,
      )
    }
    if (key.length < 16 || key.length > 64) {
      key.fill(0)
      return this.refuse(
        'bad_sealed_key',
        `a PSK is 16 to 64 bytes, this one ${key.length}`,
        request,
        operator,
      )
    }
    const done = await devices
      .rotatePsk(device, key, {
        overlapHours: command.overlapHours,
        ...(command.identity !== undefined && { identity: command.identity }),
      })
      .finally(() => key.fill(0))
    if ('refused' in done) {
      return this.refuse(done.refused, done.detail, request, operator)
    }
    this.options.logger.info(
      {
        request,
        operator,
        device,
        identity: done.identity,
        previousIdentity: done.previousIdentity,
        until: done.until,
      },
      `rotation: device ${device} has a new PSK identity ${done.identity}; ${done.previousIdentity} is accepted until ${done.until}`,
    )
    this.reply({ state: 'device_psk', request, device, ...done })
    return 'device_psk'
  }

  private async applyDeviceKey(
    command: Extract<RotationCommand, { type: 'device-key' }>,
    operator: string,
    devices: DeviceCredentials,
  ): Promise<string> {
    const { request, device, topic } = command
    const done = await devices.rotatePayloadKey(device, topic, { overlapHours: command.overlapHours })
    if ('refused' in done) {
      return this.refuse(done.refused, done.detail, request, operator)
    }
    this.options.logger.info(
      { request, operator, device, kid: done.kid, previousKid: done.previousKid, until: done.until, topic },
      `rotation: device ${device} has a new payload key (kid ${done.kid}), sent to it sealed under kid ${done.previousKid}, which is accepted until ${done.until}`,
    )
    this.reply({ state: 'device_key', request, device, topic, ...done })
    return 'device_key'
  }

  /**
   * Every control interval: a CSR published by itself once a day while the certificate is within
   * `cloud.rotation.leadDays` of its end; the old CA bundle dropped once a trust overlap is over.
   */
  async tick(now = Date.now()): Promise<void> {
    // One check at a time: a broker that drops packets holds the trust probe for its deadline,
    // which may be longer than the health interval that calls this; those calls are skipped.
    if (this.ticking) return
    this.ticking = true
    const run = this.chain.then(async () => {
      const { daysLeft } = this.options.certificate.status(now)
      const session = this.options.link.session$.value
      const sinceLast = performance.now() - this.lastDueCsr
      if (daysLeft <= this.options.cloud.rotation.leadDays && session && sinceLast > 86_400_000) {
        this.lastDueCsr = performance.now()
        await this.publishCsr(null, 'due')
      }
      await this.endTrustOverlap(now)
    })
    this.chain = run
      .catch((err: unknown) =>
        this.options.logger.warn({ err: (err as Error).message }, 'rotation: the periodic check failed'),
      )
      .finally(() => {
        this.ticking = false
      })
    await this.chain
  }

  private async endTrustOverlap(now: number): Promise<void> {
    const text = await readIfThere(this.files.trust)
    if (text === undefined) return
    const overlap = JSON.parse(text) as { bundle?: unknown; until?: unknown; written?: unknown }
    if (typeof overlap.bundle !== 'string' || typeof overlap.until !== 'number' || now < overlap.until) return
    const { caFile } = this.options.cloud
    const holds = createHash('sha256')
      .update(await readFile(caFile, 'utf8').catch(() => ''))
      .digest('hex')
    if (holds !== overlap.written) {
      await rm(this.files.trust, { force: true })
      this.options.logger.warn(
        { caFile },
        'rotation: the CA bundle overlap is over, but cloud.caFile was changed by hand meanwhile: left as it is',
      )
      return
    }
    // The broker must verify under the pushed bundle alone before the old CAs go: a gateway left
    // with CAs that cannot verify the broker could not be reached to correct it. Until it does
    // (the broker still on an old CA, or the link down), the overlap goes on, checked each tick.
    const probe = await this.options.link.probeTrust(
      Buffer.from(overlap.bundle),
      this.options.cloud.rotation.deadlineSeconds * 1000,
    )
    if (!probe.ok) {
      this.options.metrics.increment('rotation_trust_overlap_kept_total')
      if (this.overlapLines.take('kept') !== undefined) {
        this.options.logger.warn(
          { caFile, cause: probe.cause },
          `rotation: the CA bundle overlap is over, but the cloud broker's certificate does not verify under the pushed bundle alone (${probe.cause}): cloud.caFile keeps the old CAs too, and this is checked again at each health interval`,
        )
      }
      return
    }
    await writeAtomically(caFile, overlap.bundle, await modeOf(caFile, 0o644))
    await rm(this.files.trust, { force: true })
    this.options.logger.info(
      { caFile },
      'rotation: the CA bundle overlap is over; cloud.caFile holds the pushed bundle alone',
    )
  }

  /** A refusal: nothing changed. Counted, reported as `rotation_refused`, answered; returns the reason. */
  private refuse<R extends RotationRefusal>(
    reason: R,
    detail: string,
    request: string | null,
    operator?: string,
    answer = true,
  ): R {
    return this.report('refused', reason, detail, request, operator, answer)
  }

  /** A certificate tried and given up: the link stays where it was. As refuse, `rotation_rolled_back`. */
  private rollBack<R extends RotationRefusal>(
    reason: R,
    detail: string,
    request: string,
    operator: string,
  ): R {
    return this.report('rolled_back', reason, detail, request, operator)
  }

  private report<R extends RotationRefusal>(
    state: 'refused' | 'rolled_back',
    reason: R,
    detail: string,
    request: string | null,
    operator: string | undefined,
    answer = true,
  ): R {
    this.options.metrics.increment(series('rotation_refused_total', { reason }))
    this.options.security.report(
      state === 'refused' ? 'rotation_refused' : 'rotation_rolled_back',
      { reason, detail, ...(request && { request }), ...(operator && { operator }) },
      state === 'refused'
        ? `rotation command refused (${reason}): nothing changed`
        : `certificate rotation rolled back (${reason}): the cloud link stays on the certificate it had`,
    )
    if (!answer) return reason
    if (state === 'refused') this.reply({ state, request, reason, detail })
    else this.reply({ state, request: request ?? '', reason, detail })
    return reason
  }

  /** A signed reply on the rotation topic, over the live session; none while the link is down. */
  private reply(body: RotationReply): void {
    const { control, protector, gatewayId, link, logger } = this.options
    const session = link.session$.value
    if (!session) {
      logger.warn({ state: body.state }, 'rotation: the cloud link is down; the reply is not sent')
      return
    }
    const topic = control.rotation
    session
      .publish({
        topic,
        payload: protector.control(topic, 'rotation', body),
        retain: false,
        userProperties: { 'gw-id': gatewayId },
      })
      .catch((err: unknown) =>
        logger.warn({ state: body.state, err: (err as Error).message }, 'rotation reply not acknowledged'),
      )
  }
}

/**
 * At start, before the certificate is loaded: finishes a rotation a crash cut short between writing
 * the key and the certificate (the pair on disk does not match, the staged certificate and the
 * pending key do), and forgets staged files of one cut short before (the pair on disk is whole: the
 * gateway goes on with it; the pending key stays, so the same certificate can be pushed again).
 * Returns what it did, for the log.
 */
export async function recoverRotation(
  cloud: CloudConfig,
  stateDir: string,
): Promise<'none' | 'finished' | 'discarded'> {
  const files = rotationFiles(stateDir)
  const staged = await readIfThere(files.staged)
  const pending = await readIfThere(files.pendingKey)
  let installedWhole = false
  let installedPem = ''
  let installed: X509Certificate | undefined
  try {
    installedPem = await readFile(cloud.certFile, 'utf8')
    installed = new X509Certificate(installedPem)
    installedWhole = installed.checkPrivateKey(createPrivateKey(await readFile(cloud.keyFile)))
  } catch {
    installedWhole = false
  }
  let pendingInstalled = false
  try {
    pendingInstalled =
      installedWhole && pending !== undefined && !!installed?.checkPrivateKey(createPrivateKey(pending))
  } catch {
    pendingInstalled = false
  }
  // Installed, and only the clean-up was cut short: the pending key is the key in use.
  if (pendingInstalled) await rm(files.pendingKey, { force: true })
  if (staged === undefined) return 'none'
  if (installedWhole) {
    await rm(files.staged, { force: true })
    return installedPem.trim() === staged.trim() ? 'finished' : 'discarded'
  }
  if (pending === undefined) return 'none'
  let fits = false
  try {
    fits = new X509Certificate(staged).checkPrivateKey(createPrivateKey(pending))
  } catch {
    fits = false
  }
  if (!fits) return 'none'
  await writeSecretFile(cloud.keyFile, pending)
  await writeAtomically(cloud.certFile, staged, await modeOf(cloud.certFile, 0o644))
  await rm(files.staged, { force: true })
  await rm(files.pendingKey, { force: true })
  return 'finished'
}
