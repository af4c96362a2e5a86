import type { Command } from 'commander'
import type { ExplainOptions } from '../actions/policy.js'
import { registerImportMosquitto } from './import-mosquitto.js'

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
    .action(async (options: ExplainOptions) => (await import('../actions/policy.js')).explainRequest(options))

  policy
    .command('check')
    .description('validate the config, its devices and its policies without starting anything')
    .requiredOption('-c, --config <file>', 'the gateway config file')
    .action(async (options: { config: string }) =>
      (await import('../actions/policy.js')).checkPolicies(options),
    )
}
