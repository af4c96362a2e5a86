import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { parse } from 'yaml'
import { z } from 'zod'
import { BridgeError } from '../bridge/errors.js'
import { formatIssue } from '../config/format-issue.js'
import { PARSE_ONCE } from '../core/parse-once.js'

/**
 * The cloud side's config for `edge-gateway cloud consume|command`: how to
 * reach the cloud broker (mutual TLS), which CA vouches for gateways, which
 * HPKE keys open sealed payloads, which operator key signs commands.
 * Paths are relative to the file.
 */
const GROUP_NAME = /^[A-Za-z0-9_-]{1,64}$/

export const cloudToolSchema = z.strictObject({
  broker: z.strictObject({
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(8883),
    servername: z.string().min(1).optional(),
    caFile: z.string().min(1),
    certFile: z.string().min(1),
    keyFile: z.string().min(1),
    clientId: z.string().min(1).max(128).optional(),
  }),
  /** The CA that issued the gateways' client certificates (default: broker.caFile). */
  trust: z.strictObject({ caFile: z.string().min(1).optional() }).prefault({}),
  /** The control tree prefix the gateways use (their cloud.control.prefix). */
  controlPrefix: z.string().min(1).max(64).default('$gw'),
  /** Data topics to consume. */
  subscribe: z.array(z.string().min(1)).default(['#']),
  /** HPKE private keys (raw X25519, hex or base64, 0600) to open payloads sealed to us. */
  recipients: z
    .array(z.strictObject({ kid: z.string().min(1).max(32), privateKeyFile: z.string().min(1) }))
    .default([]),
  /** The operator's signing key (Ed25519 or P-256 PEM, 0600) for `cloud command`. */
  operator: z.strictObject({ keyFile: z.string().min(1) }).optional(),
  /**
   * `cloud consume` as one member of a group (docs/scaling.md): an MQTT 5 shared subscription
   * spreads the messages over the members, whose de-duplication state and key bindings live in Redis.
   */
  group: z
    .strictObject({
      /** The shared subscription's group: `$share/<name>/<filter>`. */
      name: z.string().regex(GROUP_NAME, 'letters, digits, - and _ (1 to 64)'),
      /** This member's name (or `--member`): its MQTT client id is `<name>-<member>`, a persistent session. */
      member: z.string().regex(GROUP_NAME, 'letters, digits, - and _ (1 to 64)').optional(),
      /**
       * MQTT connections per member, each its own session in the group: a connection's messages are
       * handled one at a time, so more connections keep more messages in hand while Redis answers.
       */
      connections: z.number().int().min(1).max(64).default(4),
      /** How long the broker keeps a member's session, and the messages queued for it, while it is away. */
      sessionExpirySeconds: z.number().int().min(60).max(2_592_000).default(86_400),
      /** How long a message whose key binding is unknown waits for it before it is refused. */
      bindingWaitSeconds: z.number().int().min(1).max(3600).default(30),
      /** A member whose heartbeat is older than this has its session drained by another member. */
      adoptAfterSeconds: z.number().int().min(2).max(3600).default(10),
      redis: z
        .strictObject({
          host: z.string().min(1).default('127.0.0.1'),
          port: z.number().int().min(1).max(65535).default(6379),
          db: z.number().int().min(0).max(15).default(0),
          username: z.string().min(1).max(128).optional(),
          /** Redis's password (AUTH), in a 0600 file. */
          passwordFile: z.string().min(1).optional(),
          keyPrefix: z.string().min(1).max(64).default('edge-gateway:'),
        })
        .prefault({}),
      /** gw-seqs remembered per gateway (8 KiB of Redis per gateway at 65,536). */
      window: z.number().int().min(1024).max(1_048_576).default(65_536),
      /** Where verified messages go: JSON lines on stdout, or a Redis stream (exactly once). */
      output: z.enum(['stdout', 'stream']).default('stdout'),
      stream: z.string().min(1).max(256).default('edge-gateway:messages'),
    })
    .optional(),
})

export type CloudToolConfig = z.output<typeof cloudToolSchema>

const MAX_BYTES = 256 * 1024

export async function loadCloudToolConfig(file: string): Promise<CloudToolConfig> {
  const path = resolve(file)
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new BridgeError(
      'BRIDGE_ERR_CONSUMER_CONFIG',
      `${path}: cannot read (${(err as NodeJS.ErrnoException).code})`,
    )
  }
  if (text.length > MAX_BYTES)
    throw new BridgeError('BRIDGE_ERR_CONSUMER_CONFIG', `${path}: larger than ${MAX_BYTES} bytes`)
  let input: unknown
  try {
    input = parse(text)
  } catch (err) {
    throw new BridgeError(
      'BRIDGE_ERR_CONSUMER_CONFIG',
      `${path}: not YAML: ${(err as Error).message.split('\n')[0]}`,
    )
  }
  const result = cloudToolSchema.safeParse(input, PARSE_ONCE)
  if (!result.success) {
    const first = result.error.issues[0]
    throw new BridgeError(
      'BRIDGE_ERR_CONSUMER_CONFIG',
      `${path}: ${first ? formatIssue(first, input) : 'invalid'}`,
    )
  }
  const at = (p: string) => resolve(dirname(path), p)
  const c = result.data
  return {
    ...c,
    broker: {
      ...c.broker,
      caFile: at(c.broker.caFile),
      certFile: at(c.broker.certFile),
      keyFile: at(c.broker.keyFile),
    },
    trust: { caFile: at(c.trust.caFile ?? c.broker.caFile) },
    recipients: c.recipients.map((r) => ({ ...r, privateKeyFile: at(r.privateKeyFile) })),
    ...(c.operator && { operator: { keyFile: at(c.operator.keyFile) } }),
    ...(c.group && {
      group: {
        ...c.group,
        redis: {
          ...c.group.redis,
          ...(c.group.redis.passwordFile && { passwordFile: at(c.group.redis.passwordFile) }),
        },
      },
    }),
  }
}
