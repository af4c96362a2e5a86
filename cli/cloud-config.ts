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
  }
}
