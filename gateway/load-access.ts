import { createPublicKey } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { parse } from 'yaml'
import type { GatewayConfig } from '../config/index.js'
import { deriveContext } from '../crypto/context.js'
import { compilePolicy } from '../policies/engine.js'
import {
  aclToPolicy,
  MosquittoPasswordVerifier,
  parseAclFile,
  parsePasswordFile,
  parsePskFile,
  readMosquittoFile,
} from '../policies/mosquitto/index.js'
import type { PolicyInput } from '../policies/schema.js'
import type { AccessSnapshot } from './access-control.js'
import { hashFingerprint, passwordVerifier } from './auth/password-verifier.js'
import { type Pepper, readPepperFile } from './auth/pepper.js'
import { GatewayError } from './errors.js'
import { readMasterSecretConfig } from './protection/master-secret.js'
import { DeviceRegistry, type DeviceSpec, type PayloadKeys, readPskFile } from './registry.js'

/** The policy in force when the config has no `policies` section: each device owns `devices/<id>/#`. */
export const DEFAULT_POLICY: PolicyInput = {
  rules: [{ name: 'own prefix (default policy)', who: 'everyone', topic: 'devices/%d/#', action: 'both' }],
}

const MAX_POLICY_FILE_BYTES = 64 * 1024 * 1024

export interface LoadedAccess extends AccessSnapshot {
  /** Lines of imported files that could not be used, for the operator. */
  warnings: string[]
}

/** A device's verifier, the hash parsed now; a bad hash names its device (never the hash). */
function verifierOf(
  deviceId: string,
  encoded: string,
  pepper: Pepper | undefined,
): Pick<DeviceSpec, 'password' | 'passwordFingerprint'> {
  try {
    return { password: passwordVerifier(encoded, pepper), passwordFingerprint: hashFingerprint(encoded) }
  } catch (err) {
    if (err instanceof GatewayError)
      throw new GatewayError(err.code, `device ${deviceId}: ${err.message}`, { cause: err })
    throw err
  }
}

async function deviceSpecs(config: Readonly<GatewayConfig>): Promise<DeviceSpec[]> {
  const specs: DeviceSpec[] = []
  const pepperFile = config.lan.passwordPepperFile
  const pepper = pepperFile !== undefined ? await readPepperFile(pepperFile) : undefined
  // The gateway's Sender ID is the same for every device (OSCORE): two devices sharing a master
  // secret would share its sending key and nonces, so that is refused.
  const secrets = new Map<string, string>()
  for (const d of config.devices) {
    let payload: PayloadKeys | undefined
    let payloadPrevious: DeviceSpec['payloadPrevious']
    if (d.payloadKey) {
      const master = await readMasterSecretConfig(d.payloadKey)
      const secret = master.masterSecret.toString('hex')
      const other = secrets.get(secret)
      if (other) {
        throw new GatewayError(
          'GW_ERR_POLICY_FILE',
          `devices ${other} and ${d.id} have the same payload master secret`,
        )
      }
      secrets.set(secret, d.id)
      payload = { kid: master.kid, context: deriveContext(master) }
      if (d.payloadKey.previous) {
        const old = await readMasterSecretConfig({ ...d.payloadKey, ...d.payloadKey.previous })
        payloadPrevious = {
          kid: old.kid,
          context: deriveContext(old),
          until: Date.parse(d.payloadKey.previous.until),
        }
      }
    }
    specs.push({
      id: d.id,
      ...(d.username !== undefined && { username: d.username }),
      ...(d.passwordHash !== undefined && verifierOf(d.id, d.passwordHash, pepper)),
      ...(d.psk && {
        psk: {
          identity: d.psk.identity,
          key: await readPskFile(d.psk.keyFile),
          ...(d.psk.previous && {
            previous: {
              identity: d.psk.previous.identity,
              key: await readPskFile(d.psk.previous.keyFile),
              until: Date.parse(d.psk.previous.until),
            },
          }),
        },
      }),
      ...(d.certificate && { certificateCommonName: d.certificate.commonName }),
      ...(d.clientIds && { clientIds: d.clientIds }),
      groups: d.groups,
      ...(payload && { payload }),
      ...(payloadPrevious && { payloadPrevious }),
      ...(d.signingKeyFile && { signingKey: createPublicKey(await readFile(d.signingKeyFile)) }),
    })
  }
  return specs
}

/**
 * Devices from Mosquitto's files: each password_file user is a device of that
 * name (any client id, as in Mosquitto), each psk_file identity too; a user
 * and an identity of the same name are one device.
 */
async function mosquittoDevices(config: Readonly<GatewayConfig>, warnings: string[]): Promise<DeviceSpec[]> {
  const files = config.mosquitto
  const byId = new Map<string, DeviceSpec>()
  if (files?.passwordFile) {
    const parsed = parsePasswordFile(await readMosquittoFile(files.passwordFile))
    for (const p of parsed.problems) warnings.push(`${files.passwordFile}:${p.line}: ${p.message}`)
    const verifier = new MosquittoPasswordVerifier(parsed.entries)
    for (const entry of parsed.entries) {
      byId.set(entry.username, {
        id: entry.username,
        username: entry.username,
        password: (password) => verifier.verify(entry.username, password),
        passwordFingerprint: hashFingerprint(
          [
            entry.hash.type,
            entry.hash.type === 'sha512-pbkdf2' ? entry.hash.iterations : 0,
            entry.hash.salt.toString('base64'),
            entry.hash.hash.toString('base64'),
          ].join('$'),
        ),
        clientIds: ['*'],
      })
    }
  }
  if (files?.pskFile) {
    const parsed = parsePskFile(await readMosquittoFile(files.pskFile))
    for (const p of parsed.problems) warnings.push(`${files.pskFile}:${p.line}: ${p.message}`)
    for (const entry of parsed.entries) {
      const existing = byId.get(entry.identity)
      const psk = { identity: entry.identity, key: entry.key }
      byId.set(
        entry.identity,
        existing ? { ...existing, psk } : { id: entry.identity, psk, clientIds: ['*'] },
      )
    }
  }
  return [...byId.values()]
}

async function mosquittoRules(
  config: Readonly<GatewayConfig>,
  warnings: string[],
): Promise<PolicyInput['rules']> {
  const aclFile = config.mosquitto?.aclFile
  if (!aclFile) return []
  const conversion = aclToPolicy(parseAclFile(await readMosquittoFile(aclFile)))
  for (const u of conversion.unmapped) warnings.push(`${aclFile}:${u.line}: ${u.reason} (${u.outcome})`)
  return conversion.policy.rules
}

async function policyInput(config: Readonly<GatewayConfig>, warnings: string[]): Promise<PolicyInput> {
  const section = config.policies
  const imported = await mosquittoRules(config, warnings)
  if (!section) return imported.length > 0 || config.mosquitto?.aclFile ? { rules: imported } : DEFAULT_POLICY
  let rules: unknown[] = []
  let fromFile: Record<string, unknown> = {}
  if (section.file) {
    const text = await readFile(section.file, 'utf8')
    if (text.length > MAX_POLICY_FILE_BYTES) {
      throw new GatewayError(
        'GW_ERR_POLICY_FILE',
        `${section.file}: policy file larger than ${MAX_POLICY_FILE_BYTES} bytes`,
      )
    }
    let parsed: unknown
    try {
      parsed = parse(text, { uniqueKeys: true })
    } catch (err) {
      throw new GatewayError(
        'GW_ERR_POLICY_FILE',
        `${section.file}: ${(err as Error).message.split('\n')[0]}`,
        { cause: err },
      )
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new GatewayError('GW_ERR_POLICY_FILE', `${section.file}: expected a mapping with a "rules" list`)
    }
    fromFile = parsed as Record<string, unknown>
    rules = Array.isArray(fromFile.rules) ? fromFile.rules : []
  } else if (section.rules) {
    rules = section.rules
  }
  return {
    ...fromFile,
    ...(section.deniedPublish !== undefined && { deniedPublish: section.deniedPublish }),
    ...(section.floodDisconnectAfter !== undefined && { floodDisconnectAfter: section.floodDisconnectAfter }),
    ...(section.maxTopicBytes !== undefined && { maxTopicBytes: section.maxTopicBytes }),
    rules: [...(rules as PolicyInput['rules']), ...imported],
  }
}

/**
 * Builds what the LAN broker checks against: the device registry (config
 * devices, their PSK key files) and the compiled policy. Used at start and by
 * every reload; throws on anything invalid, so a broken file never replaces a
 * working policy.
 */
export async function loadAccess(config: Readonly<GatewayConfig>): Promise<LoadedAccess> {
  const warnings: string[] = []
  const specs = await deviceSpecs(config)
  const configured = new Set(specs.map((s) => s.id))
  for (const spec of await mosquittoDevices(config, warnings)) {
    if (configured.has(spec.id)) {
      throw new GatewayError(
        'GW_ERR_POLICY_FILE',
        `device "${spec.id}" is both in the config and in a Mosquitto file; keep one`,
      )
    }
    specs.push(spec)
  }
  const input = await policyInput(config, warnings)
  let engine: ReturnType<typeof compilePolicy>
  try {
    engine = compilePolicy(input)
  } catch (err) {
    const where = config.policies?.file ?? 'policies'
    throw new GatewayError('GW_ERR_POLICY_FILE', `${where}: ${(err as Error).message}`, { cause: err })
  }
  return {
    registry: new DeviceRegistry(specs),
    engine,
    warnings,
    deviceRate: config.lan.deviceRate,
    slowPasswordHashes: config.devices.some((d) => d.passwordHash?.startsWith('$scrypt$') === true),
  }
}
