import { generateKeyPairSync, randomBytes, type X509Certificate } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { tlsNameOptions } from '../../bridge/cloud-link.js'
import { type ConsumeResult, EnvelopeConsumer } from '../../bridge/consumer.js'
import { operatorKid, signCommand } from '../../bridge/envelope.js'
import { BridgeError } from '../../bridge/errors.js'
import { limitInboundPackets, MAX_CLOUD_TOOL_PACKET_BYTES } from '../../bridge/inbound-size.js'
import { parsePrivateKey, readRawPrivateKey } from '../../bridge/keys.js'
import { linkErrorMessage } from '../../bridge/link-errors.js'
import { readBundle } from '../../bridge/rotation/check.js'
import { secretFileProblem } from '../../config/secret-files.js'
import { generateHpkeKeyPair } from '../../crypto/hpke.js'
import { writePublicFile, writeSecretFile } from '../../pki/files.js'
import { type CloudToolConfig, loadCloudToolConfig } from '../cloud-config.js'

/** How to reach the cloud broker: mutual TLS, MQTT 5 (the client id and session are the caller's). */
export async function brokerOptions(config: CloudToolConfig): Promise<IClientOptions> {
  const b = config.broker
  const [ca, cert, key] = await Promise.all([readFile(b.caFile), readFile(b.certFile), readFile(b.keyFile)])
  return {
    protocol: 'mqtts',
    host: b.host,
    port: b.port,
    // An IP address is never sent as SNI (DEP0123); the certificate is still checked against it.
    ...tlsNameOptions(b.host, b.servername),
    ca,
    cert,
    key,
    rejectUnauthorized: true,
    protocolVersion: 5,
    connectTimeout: 10_000,
    properties: { maximumPacketSize: MAX_CLOUD_TOOL_PACKET_BYTES },
  }
}

/**
 * mqtt.connect, held to MAX_CLOUD_TOOL_PACKET_BYTES on every connection: a packet the broker
 * announces larger closes that connection before its body is buffered (said on stderr), and the
 * client reconnects as its options say.
 */
export function connectLimited(options: IClientOptions): MqttClient {
  const client = mqtt.connect(options)
  limitInboundPackets(client, MAX_CLOUD_TOOL_PACKET_BYTES, (bytes) =>
    process.stderr.write(
      `edge-gateway: the cloud broker sent a packet of ${bytes} bytes, over the ${MAX_CLOUD_TOOL_PACKET_BYTES} this tool takes: connection closed\n`,
    ),
  )
  return client
}

/** Resolves with the first CONNACK's session-present flag; the first connection's error ends the client. */
export function connected(client: MqttClient, config: CloudToolConfig): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const failed = (err: Error) => {
      client.end(true)
      reject(
        new BridgeError(
          'BRIDGE_ERR_CLOUD_CONNECT',
          `cannot connect to ${config.broker.host}:${config.broker.port}: ${linkErrorMessage(err)}`,
        ),
      )
    }
    client.once('error', failed)
    client.once('connect', (connack) => {
      client.off('error', failed)
      resolve(connack.sessionPresent)
    })
  })
}

export async function connect(config: CloudToolConfig, clientIdPrefix: string): Promise<MqttClient> {
  const client = connectLimited({
    ...(await brokerOptions(config)),
    clientId: config.broker.clientId ?? `${clientIdPrefix}-${randomBytes(4).toString('hex')}`,
    clean: true,
    reconnectPeriod: 1000,
  })
  await connected(client, config)
  return client
}

export interface ConsumeOptions {
  config: string
  count?: string
  timeout?: string
  showDuplicates?: boolean
}

export function printable(body: Buffer): { payload: string; encoding: 'utf8' | 'base64' } {
  const text = body.toString('utf8')
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this detects
  return Buffer.from(text, 'utf8').equals(body) && !/[\u0000-\u0008\u000e-\u001f]/.test(text)
    ? { payload: text, encoding: 'utf8' }
    : { payload: body.toString('base64'), encoding: 'base64' }
}

/** Largest CA bundle the cloud tools read. */
const MAX_TRUST_BUNDLE_BYTES = 1024 * 1024

/**
 * Every certificate of a CA bundle (`trust.caFile`): a key binding is trusted when one of them
 * issued its certificate, so a bundle of the old and the new CA accepts gateways on either while
 * they move (docs/rotation.md). Each PEM block must parse, and there must be one at least.
 */
export async function readTrustBundle(file: string): Promise<X509Certificate[]> {
  const size = (await stat(file)).size
  if (size > MAX_TRUST_BUNDLE_BYTES) {
    throw new BridgeError(
      'BRIDGE_ERR_CONSUMER_CONFIG',
      `${file}: ${size} bytes, more than a CA bundle's ${MAX_TRUST_BUNDLE_BYTES}`,
    )
  }
  const bundle = readBundle(await readFile(file, 'utf8'))
  if (bundle === undefined || bundle.length === 0) {
    throw new BridgeError(
      'BRIDGE_ERR_CONSUMER_CONFIG',
      `${file}: expected one or more PEM certificates (the CA or CAs that issue the gateways' certificates), ${bundle === undefined ? 'got a block that does not parse' : 'got none'}`,
    )
  }
  return bundle
}

/**
 * The verifier of a consumer: the CA its key bindings must chain to and the HPKE recipient keys
 * it opens sealed bodies with; `dedupeMemory` 0 for a group member (its duplicates are in Redis).
 */
export async function openEnvelopeConsumer(
  config: CloudToolConfig,
  dedupeMemory?: number,
): Promise<EnvelopeConsumer> {
  const ca = await readTrustBundle(config.trust.caFile ?? config.broker.caFile)
  const recipients = []
  for (const r of config.recipients) {
    recipients.push({
      kid: Buffer.from(r.kid, 'utf8'),
      privateKey: await readRawPrivateKey(r.privateKeyFile, `recipient ${r.kid}`),
    })
  }
  return new EnvelopeConsumer(ca, recipients, dedupeMemory)
}

/** `cloud consume`: verified, opened, de-duplicated messages, one JSON line each. */
export async function consume(options: ConsumeOptions & { member?: string }): Promise<void> {
  const config = await loadCloudToolConfig(options.config)
  if (config.group) {
    await (await import('./cloud-group.js')).consumeInGroup(config, options)
    return
  }
  if (options.member !== undefined) {
    throw new BridgeError('BRIDGE_ERR_CONSUMER_CONFIG', `${options.config}: --member needs a group: section`)
  }
  const consumer = await openEnvelopeConsumer(config)
  const limit = options.count === undefined ? Number.POSITIVE_INFINITY : Number(options.count)
  const client = await connect(config, 'edge-gateway-consumer')
  const out = (record: unknown) => process.stdout.write(`${JSON.stringify(record)}\n`)
  let printed = 0
  let rejected = 0
  let duplicates = 0
  let finish: () => void = () => undefined
  const done = new Promise<void>((resolve) => {
    finish = resolve
  })
  const emit = (result: ConsumeResult) => {
    if (result.ok === 'pending') return
    if (result.ok === false) {
      rejected++
      out({
        rejected: result.failure,
        cloudTopic: result.cloudTopic,
        ...(result.kid && { kid: result.kid }),
      })
      return
    }
    const m = result.message
    if (m.duplicate) duplicates++
    if (m.duplicate && !options.showDuplicates) return
    const { payload, encoding } = printable(m.body)
    out({
      kind: m.kind,
      gateway: m.gatewayId,
      device: m.deviceId,
      topic: m.topic,
      cloudTopic: m.cloudTopic,
      seq: m.seq,
      timestamp: m.timestamp,
      protection: m.protection,
      ...(m.duplicate && { duplicate: true }),
      payload,
      encoding,
    })
    if (m.kind === 'message' && !m.duplicate && ++printed >= limit) finish()
  }
  const bindingFilter = `${config.controlPrefix}/+/binding`
  // Messages are handled one at a time, in arrival order.
  let chain = Promise.resolve()
  client.on('message', (topic, payload) => {
    chain = chain.then(async () => {
      if (topic.startsWith(`${config.controlPrefix}/`) && topic.endsWith('/binding')) {
        const result = await consumer.binding(payload)
        if (!result.ok) {
          rejected++
          out({ rejected: `binding_${result.failure}`, cloudTopic: topic })
        }
        for (const r of result.released) emit(r)
        return
      }
      emit(await consumer.message(topic, payload))
    })
  })
  await client.subscribeAsync([bindingFilter], { qos: 1 })
  await client.subscribeAsync(
    [...config.subscribe, `${config.controlPrefix}/+/status`, `${config.controlPrefix}/+/health`],
    {
      qos: 1,
    },
  )
  process.stderr.write(
    `consuming ${config.subscribe.join(', ')} from ${config.broker.host}:${config.broker.port}\n`,
  )
  const timer = options.timeout === undefined ? undefined : setTimeout(finish, Number(options.timeout) * 1000)
  process.once('SIGINT', finish)
  process.once('SIGTERM', finish)
  await done
  if (timer) clearTimeout(timer)
  await chain
  await client.endAsync()
  process.stderr.write(
    `consumed ${printed} message(s), ${duplicates} duplicate(s) dropped, ${rejected} rejected, ${consumer.waiting} waiting for a key binding\n`,
  )
  if (rejected > 0) process.exitCode = 1
}

export interface CommandOptions {
  config: string
  gateway: string
  device: string
  topic: string
  payload?: string
  payloadFile?: string
}

/** `cloud command`: a downlink command signed with the operator key, published to the cloud broker. */
export async function sendCommand(options: CommandOptions): Promise<void> {
  const config = await loadCloudToolConfig(options.config)
  if (!config.operator) {
    throw new BridgeError(
      'BRIDGE_ERR_CONSUMER_CONFIG',
      `${options.config}: operator.keyFile is needed to sign commands`,
    )
  }
  if ((options.payload === undefined) === (options.payloadFile === undefined)) {
    throw new BridgeError('BRIDGE_ERR_CONSUMER_CONFIG', 'give exactly one of --payload or --payload-file')
  }
  const problem = await secretFileProblem(config.operator.keyFile)
  if (problem) throw new BridgeError('BRIDGE_ERR_KEY_FILE', `operator.keyFile: ${problem}`)
  const key = parsePrivateKey(await readFile(config.operator.keyFile), config.operator.keyFile)
  const body = options.payloadFile
    ? await readFile(options.payloadFile)
    : Buffer.from(options.payload ?? '', 'utf8')
  const signed = signCommand(key, operatorKid(key), options.topic, {
    gatewayId: options.gateway,
    deviceId: options.device,
    nonce: randomBytes(16),
    timestamp: Date.now(),
    body,
  })
  const client = await connect(config, 'edge-gateway-operator')
  await client.publishAsync(options.topic, signed, { qos: 1 })
  await client.endAsync()
  process.stdout.write(
    `sent a signed command for ${options.gateway}/${options.device} on ${options.topic} (${signed.length} bytes)\n`,
  )
}

export interface KeygenOptions {
  operator?: string
  recipient?: string
}

/** `cloud keygen`: an operator signing key or an HPKE recipient key. */
export async function keygen(options: KeygenOptions): Promise<void> {
  if ((options.operator === undefined) === (options.recipient === undefined)) {
    throw new BridgeError('BRIDGE_ERR_CONSUMER_CONFIG', 'give exactly one of --operator or --recipient')
  }
  if (options.operator) {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519')
    await writeSecretFile(`${options.operator}.key`, privateKey.export({ type: 'pkcs8', format: 'pem' }))
    await writePublicFile(
      `${options.operator}.pub`,
      publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    )
    process.stdout.write(
      `operator key ${options.operator}.key (0600), public key ${options.operator}.pub; kid ${operatorKid(publicKey).toString('hex')}\n`,
    )
    return
  }
  const prefix = options.recipient as string
  const pair = await generateHpkeKeyPair()
  await writeSecretFile(`${prefix}.key`, `${pair.privateKey.toString('hex')}\n`)
  await writePublicFile(`${prefix}.pub`, `${pair.publicKey.toString('hex')}\n`)
  process.stdout.write(`recipient key ${prefix}.key (0600), public key ${prefix}.pub\n`)
}
