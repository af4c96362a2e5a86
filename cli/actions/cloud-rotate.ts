import { constants, publicEncrypt, randomBytes, X509Certificate } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import type { MqttClient } from 'mqtt'
import { type ConsumeResult, EnvelopeConsumer } from '../../bridge/consumer.js'
import { operatorKid, signCommand, verifyKeyBinding } from '../../bridge/envelope.js'
import { BridgeError } from '../../bridge/errors.js'
import { parsePrivateKey } from '../../bridge/keys.js'
import { checkPushedBundle } from '../../bridge/rotation/check.js'
import { GATEWAY_ITSELF, type RotationCommand, type RotationReply } from '../../bridge/rotation/messages.js'
import { secretFileProblem } from '../../config/secret-files.js'
import { checkCsr, issueFromCsr } from '../../pki/csr.js'
import { writeSecretFile } from '../../pki/files.js'
import { loadSigner } from '../../pki/issue.js'
import { type CloudToolConfig, loadCloudToolConfig } from '../cloud-config.js'
import { connect, readTrustBundle } from './cloud.js'

/** Exit status when the gateway refused or rolled back what was pushed, or never answered. */
export const EXIT_REFUSED = 1

type Step = (line: string) => void

/**
 * The operator's side of a rotation: one connection to the cloud broker, the gateway's key
 * binding (its certificate must chain to `trust.caFile`), and signed commands on
 * `<prefix>/<gateway>/rotate` whose replies, signed with the bound key, come back on
 * `<prefix>/<gateway>/rotation`.
 */
class RotationChannel {
  private readonly waiting = new Map<string, (reply: RotationReply) => void>()
  private chain = Promise.resolve()
  private bound: () => void = () => undefined
  private readonly boundOnce: Promise<void>
  /** The gateway's client certificate, from its latest verified key binding. */
  certificate: X509Certificate | undefined

  private constructor(
    private readonly client: MqttClient,
    private readonly config: CloudToolConfig,
    private readonly gateway: string,
    private readonly consumer: EnvelopeConsumer,
    private readonly step: Step,
    private readonly ca: readonly X509Certificate[],
  ) {
    this.boundOnce = new Promise((resolve) => {
      this.bound = resolve
    })
  }

  private get root(): string {
    return `${this.config.controlPrefix}/${this.gateway}`
  }

  static async open(config: CloudToolConfig, gateway: string, step: Step): Promise<RotationChannel> {
    const ca = await readTrustBundle(config.trust.caFile ?? config.broker.caFile)
    const client = await connect(config, 'edge-gateway-rotate')
    const channel = new RotationChannel(client, config, gateway, new EnvelopeConsumer(ca, []), step, ca)
    client.on('message', (topic, payload) => {
      channel.chain = channel.chain.then(() => channel.receive(topic, payload))
    })
    await client.subscribeAsync([`${channel.root}/binding`, `${channel.root}/rotation`], { qos: 1 })
    return channel
  }

  private async receive(topic: string, payload: Buffer): Promise<void> {
    if (topic === `${this.root}/binding`) {
      const result = await this.consumer.binding(payload)
      if (!result.ok || result.gatewayId !== this.gateway) {
        this.step(
          `ignored a key binding for ${this.gateway} that does not verify (${result.failure ?? 'another gateway'})`,
        )
        return
      }
      const verified = verifyKeyBinding(payload, this.ca)
      if ('certificate' in verified) this.certificate = verified.certificate
      this.bound()
      for (const r of result.released) this.reply(r)
      return
    }
    this.reply(await this.consumer.message(topic, payload))
  }

  private reply(result: ConsumeResult): void {
    if (result.ok !== true) {
      if (result.ok === false) this.step(`ignored a reply that does not verify (${result.failure})`)
      return
    }
    const m = result.message
    if (m.kind !== 'control' || m.gatewayId !== this.gateway || m.topic !== 'rotation') return
    let body: RotationReply
    try {
      body = JSON.parse(m.body.toString('utf8')) as RotationReply
    } catch {
      return
    }
    const request = (body as { request?: unknown }).request
    if (typeof request !== 'string') return
    this.waiting.get(request)?.(body)
  }

  /** Waits for the gateway's key binding (retained on the broker); throws after `timeoutMs`. */
  async binding(timeoutMs: number): Promise<void> {
    await within(
      this.boundOnce,
      timeoutMs,
      `no verified key binding from ${this.gateway} within ${timeoutMs / 1000} s: is it connected, and does trust.caFile hold the CA of its certificate?`,
    )
  }

  /** Signs and publishes `command`, and resolves with the gateway's reply to it. */
  async ask(
    key: ReturnType<typeof parsePrivateKey>,
    command: RotationCommand,
    timeoutMs: number,
  ): Promise<RotationReply> {
    const reply = new Promise<RotationReply>((resolve) => this.waiting.set(command.request, resolve))
    const topic = `${this.root}/rotate`
    const signed = signCommand(key, operatorKid(key), topic, {
      gatewayId: this.gateway,
      deviceId: GATEWAY_ITSELF,
      nonce: randomBytes(16),
      timestamp: Date.now(),
      body: Buffer.from(JSON.stringify(command)),
    })
    await this.client.publishAsync(topic, signed, { qos: 1 })
    try {
      return await within(reply, timeoutMs, `no answer from ${this.gateway} within ${timeoutMs / 1000} s`)
    } finally {
      this.waiting.delete(command.request)
    }
  }

  async close(): Promise<void> {
    await this.client.endAsync()
  }
}

async function within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BridgeError('BRIDGE_ERR_ROTATION', message)), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

async function operatorKey(config: CloudToolConfig, file: string) {
  if (!config.operator) {
    throw new BridgeError(
      'BRIDGE_ERR_CONSUMER_CONFIG',
      `${file}: operator.keyFile is needed to sign rotation commands`,
    )
  }
  const problem = await secretFileProblem(config.operator.keyFile)
  if (problem) throw new BridgeError('BRIDGE_ERR_KEY_FILE', `operator.keyFile: ${problem}`)
  return parsePrivateKey(await readFile(config.operator.keyFile), config.operator.keyFile)
}

/** Prints a refusal or rollback and sets the exit status; true when it was one. */
function refused(reply: RotationReply, step: Step): boolean {
  if (reply.state !== 'refused' && reply.state !== 'rolled_back') return false
  step(
    `${reply.state === 'refused' ? 'REFUSED' : 'ROLLED BACK'} by the gateway: ${reply.reason}: ${reply.detail}`,
  )
  process.exitCode = EXIT_REFUSED
  return true
}

/** What one operator command holds while it talks to a gateway. */
interface GatewaySession {
  channel: RotationChannel
  step: Step
  /** A fresh request id, echoed in the gateway's replies. */
  request: string
  /**
   * Signs and sends `command` and resolves with the reply in state `expected`; undefined when the
   * gateway refused or rolled it back (printed, exit status 1); throws on any other answer.
   */
  ask<S extends RotationReply['state']>(
    command: RotationCommand,
    expected: S,
  ): Promise<Extract<RotationReply, { state: S }> | undefined>
}

/**
 * The part every operator command shares: the cloud tools' config and the operator key, one
 * connection to the broker, the gateway's verified key binding; then `run`; then the connection
 * is closed, whatever happened.
 */
async function withGateway(
  options: { config: string; gateway: string; timeout?: string },
  defaultTimeoutSeconds: number,
  run: (session: GatewaySession) => Promise<void>,
): Promise<void> {
  const step: Step = (line) => process.stdout.write(`${line}\n`)
  const config = await loadCloudToolConfig(options.config)
  const key = await operatorKey(config, options.config)
  const timeoutMs = Number(options.timeout ?? defaultTimeoutSeconds) * 1000
  const channel = await RotationChannel.open(config, options.gateway, step)
  try {
    await channel.binding(Math.min(timeoutMs, 30_000))
    step(`key binding of ${options.gateway} verified`)
    await run({
      channel,
      step,
      request: randomBytes(16).toString('hex'),
      async ask(command, expected) {
        const reply = await channel.ask(key, command, timeoutMs)
        if (refused(reply, step)) return undefined
        if (reply.state !== expected)
          throw new BridgeError('BRIDGE_ERR_ROTATION', `unexpected answer: ${reply.state}`)
        return reply as Extract<RotationReply, { state: typeof expected }>
      },
    })
  } finally {
    await channel.close()
  }
}

/** `--overlap-hours`: above 0, at most a year. */
function overlapHoursOf(value: string | undefined): number {
  const hours = Number(value ?? 24)
  if (!(Number.isFinite(hours) && hours > 0 && hours <= 8760)) {
    throw new BridgeError(
      'BRIDGE_ERR_ROTATION',
      `--overlap-hours: a number above 0, at most 8760, got ${value}`,
    )
  }
  return hours
}

export interface RotateOptions {
  config: string
  gateway: string
  caCert: string
  caKey: string
  days?: string
  timeout?: string
}

/**
 * `cloud rotate`: asks the gateway for a CSR, checks it, issues its new client certificate from the
 * operator's CA, pushes it signed, and waits for the gateway to confirm it switched (or to say why not).
 */
export async function rotate(options: RotateOptions): Promise<void> {
  const caKeyProblem = await secretFileProblem(options.caKey)
  if (caKeyProblem) throw new BridgeError('BRIDGE_ERR_KEY_FILE', `--ca-key: ${caKeyProblem}`)
  const ca = {
    certPem: await readFile(options.caCert, 'utf8'),
    keyPem: await readFile(options.caKey, 'utf8'),
  }
  // The CA is checked before the gateway is asked for anything: a CA that cannot sign (not RSA, not
  // a CA, another key) would otherwise fail only after the gateway made a pending key.
  loadSigner(ca)
  const days = options.days === undefined ? undefined : Number(options.days)
  await withGateway(options, 120, async ({ step, request, ask }) => {
    step(`asking ${options.gateway} for a CSR (request ${request})`)
    const answer = await ask({ type: 'csr-request', request }, 'csr')
    if (!answer) return
    const csr = checkCsr(answer.csr, options.gateway)
    if ('problem' in csr) {
      step(`the CSR from ${options.gateway} is refused: ${csr.problem}; nothing was issued`)
      process.exitCode = EXIT_REFUSED
      return
    }
    const bits = csr.publicKey.asymmetricKeyDetails?.modulusLength
    step(
      `CSR signed by the gateway's bound key: CN=${csr.commonName}, RSA ${bits}, proof of possession verified`,
    )
    const certificate = issueFromCsr(ca, csr, days)
    const issued = new X509Certificate(certificate)
    step(`issued serial ${issued.serialNumber}, valid until ${new Date(issued.validTo).toISOString()}`)
    step(`pushing it to ${options.gateway}; it tries the certificate on a second connection before switching`)
    const result = await ask({ type: 'certificate', request, certificate }, 'applied')
    if (!result) return
    step(
      `${options.gateway} now uses serial ${result.serial} (until ${result.notAfter}); the old certificate is no longer used`,
    )
  })
}

export interface TrustOptions {
  config: string
  gateway: string
  caBundle: string
  overlapDays?: string
  timeout?: string
}

/** `cloud trust`: pushes a new CA bundle for the broker, kept beside the gateway's old one for the overlap. */
export async function trust(options: TrustOptions): Promise<void> {
  const checked = checkPushedBundle(await readFile(options.caBundle, 'utf8'))
  if ('refused' in checked) {
    throw new BridgeError('BRIDGE_ERR_ROTATION', `${options.caBundle}: ${checked.refused}: ${checked.detail}`)
  }
  const overlapDays = Number(options.overlapDays ?? 30)
  if (!(Number.isInteger(overlapDays) && overlapDays >= 1 && overlapDays <= 365)) {
    throw new BridgeError(
      'BRIDGE_ERR_ROTATION',
      `--overlap-days: a whole number of days from 1 to 365, got ${options.overlapDays}`,
    )
  }
  const bundle = checked.certificates.map((c) => c.toString()).join('')
  await withGateway(options, 60, async ({ step, request, ask }) => {
    step(
      `pushing ${checked.certificates.length} CA certificate(s) to ${options.gateway} (request ${request})`,
    )
    const result = await ask({ type: 'trust', request, bundle, overlapDays }, 'trusted')
    if (!result) return
    step(
      result.overlapUntil
        ? `${options.gateway} trusts the new bundle, and the old one until ${result.overlapUntil}`
        : `${options.gateway} trusts the new bundle`,
    )
  })
}

export interface DevicePskOptions {
  config: string
  gateway: string
  device: string
  /** Where the new key goes (hex, 0600), for the device. */
  out: string
  identity?: string
  overlapHours?: string
  timeout?: string
}

/**
 * `cloud device-psk`: a new random PSK for a TLS-PSK device, written to `--out` (0600) for the
 * device and pushed to the gateway encrypted (RSA-OAEP, SHA-256) to its client certificate's key;
 * the gateway applies it as `device rotate` does, the old identity accepted for the overlap.
 */
export async function devicePsk(options: DevicePskOptions): Promise<void> {
  const overlapHours = overlapHoursOf(options.overlapHours)
  await withGateway(options, 60, async ({ channel, step, request, ask }) => {
    const certificate = channel.certificate
    if (certificate?.publicKey.asymmetricKeyType !== 'rsa') {
      throw new BridgeError(
        'BRIDGE_ERR_ROTATION',
        `the certificate of ${options.gateway} has no RSA key to encrypt the PSK to`,
      )
    }
    step(`the key is encrypted to the gateway's certificate (serial ${certificate.serialNumber})`)
    const psk = randomBytes(16)
    await writeSecretFile(options.out, `${psk.toString('hex')}\n`)
    const sealedKey = publicEncrypt(
      { key: certificate.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
      psk,
    ).toString('base64')
    psk.fill(0)
    step(
      `pushing a new PSK for ${options.device} to ${options.gateway} (request ${request}); the key is in ${options.out} (0600) for the device`,
    )
    const result = await ask(
      {
        type: 'device-psk',
        request,
        device: options.device,
        sealedKey,
        overlapHours,
        ...(options.identity !== undefined && { identity: options.identity }),
      },
      'device_psk',
    )
    if (!result) return
    step(
      `${options.gateway}: device ${result.device} now has PSK identity ${result.identity}; the old identity ${result.previousIdentity} is accepted until ${result.until}`,
    )
  })
}

export interface DeviceKeyOptions {
  config: string
  gateway: string
  device: string
  topic: string
  overlapHours?: string
  timeout?: string
}

/**
 * `cloud device-key`: the gateway makes a payload device's new master secret, sends it to the
 * device sealed under its current key (retained on `--topic`), and accepts the old key for the
 * overlap. The new secret never leaves the LAN.
 */
export async function deviceKey(options: DeviceKeyOptions): Promise<void> {
  const overlapHours = overlapHoursOf(options.overlapHours)
  await withGateway(options, 60, async ({ step, request, ask }) => {
    step(`asking ${options.gateway} for a new payload key for ${options.device} (request ${request})`)
    const result = await ask(
      { type: 'device-key', request, device: options.device, topic: options.topic, overlapHours },
      'device_key',
    )
    if (!result) return
    step(
      `${options.gateway}: device ${result.device} has a new payload key (kid ${result.kid}), retained for it on ${result.topic} sealed under kid ${result.previousKid}, which is accepted until ${result.until}`,
    )
  })
}
