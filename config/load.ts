import { open, stat } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { LineCounter, parseDocument } from 'yaml'
import { PARSE_ONCE } from '../core/parse-once.js'
import { crossFieldProblems } from './checks.js'
import { ConfigError } from './errors.js'
import { formatIssue } from './format-issue.js'
import { deepFreeze } from './freeze.js'
import { configSchema, type GatewayConfig } from './schema.js'
import { bearerTokenFileProblem, publicFileProblem, secretFileProblem } from './secret-files.js'
import { mayQuoteValueAt } from './secret-keys.js'
import { resolveVpnPaths, vpnSecretFiles } from './vpn-schema.js'

/** A config file larger than this is refused before it is parsed. */
export const MAX_CONFIG_BYTES = 1024 * 1024

/**
 * Parses and validates config text: YAML, then the schema (unknown keys are
 * errors), then cross-field rules. Relative paths are resolved against baseDir.
 * Returns a frozen config. Throws ConfigError with a one-line message.
 */
export function parseConfig(
  text: string,
  source: { file: string; baseDir: string },
): Readonly<GatewayConfig> {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true, lineCounter: new LineCounter() })
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!
    const line = first.linePos?.[0]
    const where = line ? `line ${line.line}, column ${line.col}: ` : ''
    throw new ConfigError(
      'CONFIG_ERR_YAML',
      `${source.file}: ${where}${first.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '')}`,
    )
  }
  const input: unknown = doc.toJS({ maxAliasCount: 100 })
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new ConfigError('CONFIG_ERR_SCHEMA', `${source.file}: expected a mapping at the top level`)
  }
  const result = configSchema.safeParse(input, PARSE_ONCE)
  if (!result.success) {
    const lines = result.error.issues.map((issue) => formatIssue(issue, input, mayQuoteValueAt))
    throw new ConfigError('CONFIG_ERR_SCHEMA', `${source.file}: ${lines.join('; ')}`)
  }
  const config = resolvePaths(result.data, source.baseDir)
  const problems = crossFieldProblems(config)
  if (problems.length > 0) {
    throw new ConfigError('CONFIG_ERR_CROSS_FIELD', `${source.file}: ${problems.join('; ')}`)
  }
  return deepFreeze(config)
}

function resolvePaths(config: GatewayConfig, baseDir: string): GatewayConfig {
  const at = (p: string) => resolve(baseDir, p)
  return {
    ...config,
    gateway: { ...config.gateway, stateDir: at(config.gateway.stateDir) },
    lan: {
      ...config.lan,
      ...(config.lan.passwordPepperFile && { passwordPepperFile: at(config.lan.passwordPepperFile) }),
      listeners: config.lan.listeners.map((l) =>
        l.type === 'tls'
          ? { ...l, certFile: at(l.certFile), keyFile: at(l.keyFile), caFile: at(l.caFile) }
          : l,
      ),
    },
    ...(config.policies && {
      policies: { ...config.policies, ...(config.policies.file && { file: at(config.policies.file) }) },
    }),
    ...(config.mosquitto && {
      mosquitto: Object.fromEntries(
        Object.entries(config.mosquitto).map(([k, v]) => [k, typeof v === 'string' ? at(v) : v]),
      ),
    }),
    devices: config.devices.map((d) => ({
      ...d,
      ...(d.psk && {
        psk: {
          ...d.psk,
          keyFile: at(d.psk.keyFile),
          ...(d.psk.previous && { previous: { ...d.psk.previous, keyFile: at(d.psk.previous.keyFile) } }),
        },
      }),
      ...(d.payloadKey && {
        payloadKey: {
          ...d.payloadKey,
          secretFile: at(d.payloadKey.secretFile),
          ...(d.payloadKey.previous && {
            previous: { ...d.payloadKey.previous, secretFile: at(d.payloadKey.previous.secretFile) },
          }),
        },
      }),
      ...(d.signingKeyFile && { signingKeyFile: at(d.signingKeyFile) }),
    })),
    cloud: {
      ...config.cloud,
      caFile: at(config.cloud.caFile),
      certFile: at(config.cloud.certFile),
      keyFile: at(config.cloud.keyFile),
      signing: {
        keyFile: at(config.cloud.signing.keyFile ?? join(config.gateway.stateDir, 'signing.key')),
      },
      recipients: config.cloud.recipients.map((r) => ({ ...r, publicKeyFile: at(r.publicKeyFile) })),
      ...(config.cloud.downlink && {
        downlink: {
          ...config.cloud.downlink,
          operators: config.cloud.downlink.operators.map((o) => ({
            ...o,
            publicKeyFile: at(o.publicKeyFile),
          })),
        },
      }),
      rotation: {
        ...config.cloud.rotation,
        ...(config.cloud.rotation.issuerCaFile && { issuerCaFile: at(config.cloud.rotation.issuerCaFile) }),
        ...(config.cloud.rotation.operators && {
          operators: config.cloud.rotation.operators.map((o) => ({
            ...o,
            publicKeyFile: at(o.publicKeyFile),
          })),
        }),
      },
    },
    ...(config.vpn && { vpn: resolveVpnPaths(config.vpn, at) }),
    observability: {
      ...config.observability,
      ...(config.observability.tokenFile && { tokenFile: at(config.observability.tokenFile) }),
    },
  }
}

/** Checks that every file the config names exists, and that key files are 0600 or tighter. */
export async function checkConfigFiles(config: Readonly<GatewayConfig>, file: string): Promise<void> {
  const checks: Array<[string, Promise<string | null>]> = [
    ['cloud.caFile', publicFileProblem(config.cloud.caFile)],
    ['cloud.certFile', publicFileProblem(config.cloud.certFile)],
    ['cloud.keyFile', secretFileProblem(config.cloud.keyFile)],
  ]
  config.devices.forEach((d, i) => {
    if (d.psk) checks.push([`devices[${i}].psk.keyFile`, secretFileProblem(d.psk.keyFile)])
    if (d.psk?.previous)
      checks.push([`devices[${i}].psk.previous.keyFile`, secretFileProblem(d.psk.previous.keyFile)])
    if (d.payloadKey)
      checks.push([`devices[${i}].payloadKey.secretFile`, secretFileProblem(d.payloadKey.secretFile)])
    if (d.payloadKey?.previous)
      checks.push([
        `devices[${i}].payloadKey.previous.secretFile`,
        secretFileProblem(d.payloadKey.previous.secretFile),
      ])
    if (d.signingKeyFile) checks.push([`devices[${i}].signingKeyFile`, publicFileProblem(d.signingKeyFile)])
  })
  if (config.lan.passwordPepperFile)
    checks.push(['lan.passwordPepperFile', secretFileProblem(config.lan.passwordPepperFile)])
  config.lan.listeners.forEach((l, i) => {
    if (l.type !== 'tls') return
    checks.push([`lan.listeners[${i}].certFile`, publicFileProblem(l.certFile)])
    checks.push([`lan.listeners[${i}].caFile`, publicFileProblem(l.caFile)])
    checks.push([`lan.listeners[${i}].keyFile`, secretFileProblem(l.keyFile)])
  })
  if (config.policies?.file) checks.push(['policies.file', publicFileProblem(config.policies.file)])
  config.cloud.recipients.forEach((r, i) => {
    checks.push([`cloud.recipients[${i}].publicKeyFile`, publicFileProblem(r.publicKeyFile)])
  })
  config.cloud.downlink?.operators.forEach((o, i) => {
    checks.push([`cloud.downlink.operators[${i}].publicKeyFile`, publicFileProblem(o.publicKeyFile)])
  })
  config.cloud.rotation.operators?.forEach((o, i) => {
    checks.push([`cloud.rotation.operators[${i}].publicKeyFile`, publicFileProblem(o.publicKeyFile)])
  })
  if (config.cloud.rotation.issuerCaFile)
    checks.push(['cloud.rotation.issuerCaFile', publicFileProblem(config.cloud.rotation.issuerCaFile)])
  if (config.observability.tokenFile)
    checks.push(['observability.tokenFile', bearerTokenFileProblem(config.observability.tokenFile)])
  if (config.mosquitto?.aclFile)
    checks.push(['mosquitto.aclFile', publicFileProblem(config.mosquitto.aclFile)])
  if (config.mosquitto?.passwordFile) {
    checks.push(['mosquitto.passwordFile', secretFileProblem(config.mosquitto.passwordFile)])
  }
  if (config.mosquitto?.pskFile)
    checks.push(['mosquitto.pskFile', secretFileProblem(config.mosquitto.pskFile)])
  for (const [path, file] of vpnSecretFiles(config.vpn)) checks.push([path, secretFileProblem(file)])
  const problems: string[] = []
  for (const [path, check] of checks) {
    const problem = await check
    if (problem) problems.push(`${path}: ${problem}`)
  }
  if (problems.length > 0) {
    throw new ConfigError('CONFIG_ERR_SECRET_FILE', `${file}: ${problems.join('; ')}`)
  }
}

/**
 * Reads, validates and checks a config file. The one entry point the CLI uses. `checkFiles:
 * false` skips the file checks (`edge-gateway vpn keys` creates the key files it names).
 */
export async function loadConfig(
  file: string,
  options: { checkFiles?: boolean } = {},
): Promise<Readonly<GatewayConfig>> {
  const path = resolve(file)
  let size: number
  try {
    size = (await stat(path)).size
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new ConfigError('CONFIG_ERR_NOT_FOUND', `${path}: config file not found`)
    throw new ConfigError('CONFIG_ERR_UNREADABLE', `${path}: cannot read config file (${code})`, {
      cause: err,
    })
  }
  if (size > MAX_CONFIG_BYTES) {
    throw new ConfigError(
      'CONFIG_ERR_UNREADABLE',
      `${path}: config file is ${size} bytes, more than the ${MAX_CONFIG_BYTES} allowed`,
    )
  }
  let text: string
  try {
    text = await readAtMost(path, MAX_CONFIG_BYTES)
  } catch (err) {
    if (err instanceof ConfigError) throw err
    const code = (err as NodeJS.ErrnoException).code
    throw new ConfigError('CONFIG_ERR_UNREADABLE', `${path}: cannot read config file (${code})`, {
      cause: err,
    })
  }
  const config = parseConfig(text, { file: path, baseDir: dirname(path) })
  if (options.checkFiles ?? true) await checkConfigFiles(config, path)
  return config
}

/**
 * The file's text, read up to `max` bytes whatever its size said: a FIFO or a device (whose size
 * reads 0) cannot make the read unbounded.
 */
async function readAtMost(path: string, max: number): Promise<string> {
  const handle = await open(path, 'r')
  try {
    const buffer = Buffer.alloc(max + 1)
    let filled = 0
    for (;;) {
      const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, null)
      if (bytesRead === 0) break
      filled += bytesRead
      if (filled > max) {
        throw new ConfigError(
          'CONFIG_ERR_UNREADABLE',
          `${path}: config file is more than the ${max} bytes allowed`,
        )
      }
    }
    return buffer.toString('utf8', 0, filled)
  } finally {
    await handle.close()
  }
}
