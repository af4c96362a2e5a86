import type { Command } from 'commander'
import { loadConfig } from '../../config/index.js'
import { loadAccess } from '../../gateway/index.js'
import { explain } from '../../policies/explain.js'
import type { PolicyRequest, Principal } from '../../policies/types.js'
import { registerImportMosquitto } from './import-mosquitto.js'

interface ExplainOptions {
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
    throw new Error(`Expected --qos to be 0, 1 or 2, got \`${options.qos}\``)
  const bytes = Number(options.bytes)
  if (!Number.isInteger(bytes) || bytes < 0)
    throw new Error(`Expected --bytes to be a whole number, got \`${options.bytes}\``)
  if ((options.publish === undefined) === (options.subscribe === undefined)) {
    throw new Error('Expected exactly one of --publish <topic> or --subscribe <filter>')
  }
  return options.publish !== undefined
    ? { action: 'publish', topic: options.publish, qos, retain: options.retain ?? false, payloadBytes: bytes }
    : { action: 'subscribe', topic: options.subscribe!, qos }
}

export function registerPolicy(program: Command): void {
  const policy = program.command('policy').description('inspect and check topic policies')
  registerImportMosquitto(policy)

  policy
    .command('explain')
    .description('print the decision for one device and one PUBLISH or SUBSCRIBE, and the rule that made it')
    .requiredOption('-c, --config <file>', 'the gateway config file')
    .requiredOption('--device <id>', 'the device asking')
    .option('--client-id <id>', 'client id it connects with (default: the device id)')
    .option('--username <name>', 'CONNECT username (default: the device username, if any)')
    .option('--publish <topic>', 'a PUBLISH to this topic')
    .option('--subscribe <filter>', 'a SUBSCRIBE to this filter')
    .option('--qos <n>', 'requested QoS', '0')
    .option('--retain', 'the PUBLISH sets the retain flag')
    .option('--bytes <n>', 'payload size of the PUBLISH', '0')
    .action(async (options: ExplainOptions) => {
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
    })

  policy
    .command('check')
    .description('validate the config, its devices and its policies without starting anything')
    .requiredOption('-c, --config <file>', 'the gateway config file')
    .action(async (options: { config: string }) => {
      const config = await loadConfig(options.config)
      const access = await loadAccess(config)
      for (const warning of access.warnings) process.stdout.write(`warning: ${warning}\n`)
      process.stdout.write(
        `ok: ${access.registry.size} device(s), ${access.engine.rules.length} rule(s), denied PUBLISH: ${access.engine.policy.deniedPublish}\n`,
      )
    })
}
