import { loadConfig } from '../../config/index.js'
import { loadAccess } from '../../gateway/index.js'
import { explain } from '../../policies/explain.js'
import type { PolicyRequest, Principal } from '../../policies/types.js'
import { UsageError } from '../fail.js'

export interface ExplainOptions {
  config: string
  device: string
  clientId?: string
  username?: string
  publish?: string
  subscribe?: string
  qos: string
  retain?: boolean
  bytes: string
}

function requestFrom(options: ExplainOptions): PolicyRequest {
  const qos = Number(options.qos)
  if (qos !== 0 && qos !== 1 && qos !== 2)
    throw new UsageError(`Expected --qos to be 0, 1 or 2, got \`${options.qos}\``)
  const bytes = Number(options.bytes)
  if (!Number.isInteger(bytes) || bytes < 0)
    throw new UsageError(`Expected --bytes to be a whole number, got \`${options.bytes}\``)
  if ((options.publish === undefined) === (options.subscribe === undefined)) {
    throw new UsageError('Expected exactly one of --publish <topic> or --subscribe <filter>')
  }
  return options.publish !== undefined
    ? { action: 'publish', topic: options.publish, qos, retain: options.retain ?? false, payloadBytes: bytes }
    : { action: 'subscribe', topic: options.subscribe!, qos }
}

/** `policy explain`: the decision for one request, and the rule that made it. */
export async function explainRequest(options: ExplainOptions): Promise<void> {
  const config = await loadConfig(options.config)
  const access = await loadAccess(config)
  const device = access.registry.byDeviceId(options.device)
  if (!device) {
    process.stdout.write(
      `DENY: no device "${options.device}" in ${options.config}; unknown devices cannot connect\n`,
    )
    process.exitCode = 1
    return
  }
  const username = options.username ?? device.username
  const principal: Principal = {
    deviceId: device.id,
    clientId: options.clientId ?? device.id,
    groups: device.groups,
    ...(username !== undefined && { username }),
  }
  const request = requestFrom(options)
  process.stdout.write(`${explain(access.engine, principal, request)}\n`)
  process.exitCode = access.engine.decide(principal, request).allowed ? 0 : 1
}

/** `policy check`: the config, its devices and policies, validated without starting anything. */
export async function checkPolicies(options: { config: string }): Promise<void> {
  const config = await loadConfig(options.config)
  const access = await loadAccess(config)
  for (const warning of access.warnings) process.stdout.write(`warning: ${warning}\n`)
  process.stdout.write(
    `ok: ${access.registry.size} device(s), ${access.engine.rules.length} rule(s), denied PUBLISH: ${access.engine.policy.deniedPublish}\n`,
  )
}
