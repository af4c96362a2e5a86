/**
 * Every config shown in README.md and docs/*.md is a config the gateway accepts.
 *
 * Each fenced block is classified by its info string, and nothing is left out:
 * - `yaml`: a config, validated as `edge-gateway policy check` validates one
 *   (`loadConfig`, which checks the schema, the cross-field rules and the files it
 *   names, then `loadAccess`, which reads the key files and compiles the policy).
 *   Which config it is follows from its top-level keys, since the three schemas
 *   share none: a policy file (`rules`, ...) is named by `policies.file` of a
 *   minimal config; the cloud tools' `cloud.yaml` (`broker`, ...) goes through
 *   `loadCloudToolConfig`; anything else is a gateway config: complete when it has
 *   a `gateway` section, otherwise a part, merged into a minimal config. A list is
 *   a list of `devices:` entries, as `edge-gateway device add` prints them.
 * - `sh`, `ts`, `ini`: a shell session, TypeScript, a wg-quick file: not configs.
 * - untagged: diagrams and byte layouts; refused when it reads as YAML with a
 *   top-level key of any config, so a config cannot hide in an untagged block.
 * - any other info string: refused until it is classified here.
 * The files a config names are made in a temporary folder (keys 0600, with
 * content of the right form where the gateway reads them).
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { access, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse, stringify } from 'yaml'
import { cloudToolSchema, loadCloudToolConfig } from '../../cli/cloud-config.js'
import { configSchema, type GatewayConfig, loadConfig, parseConfig } from '../../config/index.js'
import { vpnSecretFiles } from '../../config/vpn-schema.js'
import { loadAccess } from '../../gateway/index.js'
import { writePublicFile, writeSecretFile } from '../../pki/index.js'
import { policySchema } from '../../policies/index.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { documentationFiles, type FencedBlock, fencedBlocks } from './fenced-blocks.js'

const NOT_CONFIG = new Set(['sh', 'ts', 'ini'])

const GATEWAY_KEYS = Object.keys(configSchema.shape)
const POLICY_KEYS = Object.keys(policySchema.shape)
const CLOUD_TOOL_KEYS = Object.keys(cloudToolSchema.shape)

/**
 * Placeholders the docs write where a reader puts their own value, each with a value of
 * the right form. A new placeholder fails validation until it is listed here.
 */
const PLACEHOLDERS: Record<string, string> = {
  "<the cloud end's public key>": Buffer.alloc(32, 7).toString('base64'),
}

/** What a config part is merged into: the smallest config the gateway accepts. */
const MINIMAL: Record<string, unknown> = {
  gateway: { id: 'docs-check' },
  lan: { listeners: [{ type: 'tcp', port: 0 }] },
  cloud: {
    host: '127.0.0.1',
    caFile: 'pki/cloud-ca.pem',
    certFile: 'pki/gateway.pem',
    keyFile: 'pki/gateway.key',
    topics: [{ local: 'devices/', cloud: 'sites/docs-check/devices/' }],
  },
}

type Kind = 'gateway config' | 'gateway config part' | 'devices entries' | 'policy file' | 'cloud tool config'

function isMapping(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

function kindOf(value: unknown): Kind {
  if (Array.isArray(value)) return 'devices entries'
  if (!isMapping(value))
    throw new Error(`expected a mapping or a list of devices, got ${JSON.stringify(value)}`)
  const keys = Object.keys(value)
  if (keys.some((k) => POLICY_KEYS.includes(k))) return 'policy file'
  if (keys.some((k) => CLOUD_TOOL_KEYS.includes(k))) return 'cloud tool config'
  return 'gateway' in value ? 'gateway config' : 'gateway config part'
}

/** Mappings merge key by key; anything else in `part` replaces what `base` has. */
function merge(base: unknown, part: unknown): unknown {
  if (!isMapping(base) || !isMapping(part)) return part
  const out: Record<string, unknown> = { ...base }
  for (const [key, value] of Object.entries(part)) out[key] = merge(base[key], value)
  return out
}

function withPlaceholders(text: string): string {
  let out = text
  for (const [placeholder, value] of Object.entries(PLACEHOLDERS)) out = out.replaceAll(placeholder, value)
  return out
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  )
}

/** Makes every file the config names that does not exist yet, inside `dir` only. */
async function makeNamedFiles(config: Readonly<GatewayConfig>, dir: string): Promise<void> {
  const files: Array<[string, 'secret' | 'public', () => string]> = []
  const hex = (bytes: number) => () => `${randomBytes(bytes).toString('hex')}\n`
  const placeholder = () => '# made by test/docs/config-snippets.test.ts\n'
  const empty = () => ''
  files.push([config.cloud.caFile, 'public', placeholder], [config.cloud.certFile, 'public', placeholder])
  files.push([config.cloud.keyFile, 'secret', placeholder])
  for (const d of config.devices) {
    if (d.psk) files.push([d.psk.keyFile, 'secret', hex(16)])
    if (d.payloadKey) files.push([d.payloadKey.secretFile, 'secret', hex(16)])
    if (d.signingKeyFile) {
      const pem = () =>
        generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString()
      files.push([d.signingKeyFile, 'public', pem])
    }
  }
  for (const l of config.lan.listeners) {
    if (l.type !== 'tls') continue
    files.push([l.certFile, 'public', placeholder], [l.caFile, 'public', placeholder])
    files.push([l.keyFile, 'secret', placeholder])
  }
  if (config.policies?.file) files.push([config.policies.file, 'public', () => 'rules: []\n'])
  for (const r of config.cloud.recipients) files.push([r.publicKeyFile, 'public', placeholder])
  for (const o of config.cloud.downlink?.operators ?? []) files.push([o.publicKeyFile, 'public', placeholder])
  for (const o of config.cloud.rotation.operators ?? []) files.push([o.publicKeyFile, 'public', placeholder])
  if (config.cloud.rotation.issuerCaFile)
    files.push([config.cloud.rotation.issuerCaFile, 'public', placeholder])
  if (config.mosquitto?.aclFile) files.push([config.mosquitto.aclFile, 'public', empty])
  if (config.mosquitto?.passwordFile) files.push([config.mosquitto.passwordFile, 'secret', empty])
  if (config.mosquitto?.pskFile) files.push([config.mosquitto.pskFile, 'secret', empty])
  for (const [, file] of vpnSecretFiles(config.vpn)) files.push([file, 'secret', placeholder])
  if (config.lan.passwordPepperFile) files.push([config.lan.passwordPepperFile, 'secret', hex(32)])
  for (const [file, kind, content] of files) {
    const inside = relative(dir, file)
    if (inside.startsWith('..') || inside.startsWith('/')) {
      throw new Error(`${file}: a path outside the config's folder; examples use relative paths`)
    }
    if (await exists(file)) continue
    await (kind === 'secret' ? writeSecretFile(file, content()) : writePublicFile(file, content()))
  }
}

/** `policy check` on a gateway config text; returns its summary line. */
async function policyCheck(text: string, dir: string): Promise<string> {
  const file = join(dir, 'gateway.yaml')
  await writeFile(file, text)
  await makeNamedFiles(parseConfig(text, { file, baseDir: dir }), dir)
  const config = await loadConfig(file)
  const loaded = await loadAccess(config)
  return `ok: ${loaded.registry.size} device(s), ${loaded.engine.rules.length} rule(s)`
}

async function check(block: FencedBlock, dir: string): Promise<{ kind: Kind; result: string }> {
  const text = withPlaceholders(block.text)
  const value: unknown = parse(text, { uniqueKeys: true })
  const kind = kindOf(value)
  switch (kind) {
    case 'gateway config':
      return { kind, result: await policyCheck(text, dir) }
    case 'gateway config part':
      return { kind, result: await policyCheck(stringify(merge(MINIMAL, value)), dir) }
    case 'devices entries':
      return { kind, result: await policyCheck(stringify({ ...MINIMAL, devices: value }), dir) }
    case 'policy file': {
      await writePublicFile(join(dir, 'policy.yaml'), text)
      const config = { ...MINIMAL, policies: { file: 'policy.yaml' } }
      return { kind, result: await policyCheck(stringify(config), dir) }
    }
    case 'cloud tool config': {
      const file = join(dir, 'cloud.yaml')
      await writeFile(file, text)
      const loaded = await loadCloudToolConfig(file)
      return { kind, result: `ok: broker ${loaded.broker.host}:${loaded.broker.port}` }
    }
  }
}

const blocks = documentationFiles().flatMap((file) => fencedBlocks(file))
const yamlBlocks = blocks.filter((b) => b.lang === 'yaml' || b.lang === 'yml')

describe('config blocks in README.md and docs/', () => {
  let dirs: string[] = []
  const freshDir = async () => {
    const dir = await makeTempDir('edge-gw-docs-')
    dirs.push(dir)
    return dir
  }
  beforeAll(() => {
    dirs = []
  })
  afterAll(async () => {
    await Promise.all(dirs.map((d) => removeDir(d)))
  })

  it('the three config schemas share no top-level key, so a block is never checked against the wrong one', () => {
    const all = [...GATEWAY_KEYS, ...POLICY_KEYS, ...CLOUD_TOOL_KEYS]
    expect(all.length).toBe(new Set(all).size)
  })

  it('finds the README config and the docs config blocks', () => {
    // The README's "complete config" (found by what it says, not by its line number).
    expect(yamlBlocks.some((b) => b.where.startsWith('README.md:') && b.text.includes('id: site-17'))).toBe(
      true,
    )
    expect(yamlBlocks.length).toBeGreaterThanOrEqual(4)
  })

  it.each(yamlBlocks.map((b) => [b.where, b] as const))('%s is accepted', async (_where, block) => {
    const { kind, result } = await check(block, await freshDir())
    expect(result, kind).toMatch(/^ok: /)
  })

  it('every other block is classified: a shell session, TypeScript, an ini file, or untagged and no config', () => {
    const configKeys = new Set([...GATEWAY_KEYS, ...POLICY_KEYS, ...CLOUD_TOOL_KEYS])
    const problems: string[] = []
    for (const block of blocks) {
      if (block.lang === 'yaml' || block.lang === 'yml' || NOT_CONFIG.has(block.lang)) continue
      if (block.lang !== '') {
        problems.push(`${block.where}: \`\`\`${block.lang} is not classified in config-snippets.test.ts`)
        continue
      }
      let value: unknown
      try {
        value = parse(block.text)
      } catch {
        continue // not YAML at all: a diagram or a byte layout
      }
      const keys = isMapping(value) ? Object.keys(value) : []
      const named = keys.filter((k) => configKeys.has(k))
      if (named.length > 0)
        problems.push(`${block.where}: untagged, but reads as a config (${named.join(', ')})`)
    }
    expect(problems).toEqual([])
  })
})
