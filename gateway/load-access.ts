import { readFile } from 'node:fs/promises'
import { parse } from 'yaml'
import type { GatewayConfig } from '../config/index.js'
import { compilePolicy } from '../policies/engine.js'
import type { PolicyInput } from '../policies/schema.js'
import type { AccessSnapshot } from './access-control.js'
import { passwordVerifier } from './auth/password-verifier.js'
import { GatewayError } from './errors.js'
import { DeviceRegistry, type DeviceSpec, readPskFile } from './registry.js'

/** The policy in force when the config has no `policies` section: each device owns `devices/<id>/#`. */
export const DEFAULT_POLICY: PolicyInput = {
  rules: [{ name: 'own prefix (default policy)', who: 'everyone', topic: 'devices/%d/#', action: 'both' }],
}

const MAX_POLICY_FILE_BYTES = 64 * 1024 * 1024

export interface LoadedAccess extends AccessSnapshot {
  /** Lines of imported files that could not be used, for the operator. */
  warnings: string[]
}

async function deviceSpecs(config: Readonly<GatewayConfig>): Promise<DeviceSpec[]> {
  const specs: DeviceSpec[] = []
  for (const d of config.devices) {
    specs.push({
      id: d.id,
      ...(d.username !== undefined && { username: d.username }),
      ...(d.passwordHash !== undefined && { password: passwordVerifier(d.passwordHash) }),
      ...(d.psk && { psk: { identity: d.psk.identity, key: await readPskFile(d.psk.keyFile) } }),
      ...(d.certificate && { certificateCommonName: d.certificate.commonName }),
      ...(d.clientIds && { clientIds: d.clientIds }),
      groups: d.groups,
    })
  }
  return specs
}

async function policyInput(config: Readonly<GatewayConfig>): Promise<PolicyInput> {
  const section = config.policies
  if (!section) return DEFAULT_POLICY
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
    rules: rules as PolicyInput['rules'],
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
  const input = await policyInput(config)
  let engine: ReturnType<typeof compilePolicy>
  try {
    engine = compilePolicy(input)
  } catch (err) {
    const where = config.policies?.file ?? 'policies'
    throw new GatewayError('GW_ERR_POLICY_FILE', `${where}: ${(err as Error).message}`, { cause: err })
  }
  return { registry: new DeviceRegistry(specs), engine, warnings }
}
