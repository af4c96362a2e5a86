import type { Command } from 'commander'
import type { CommandOptions, ConsumeOptions, KeygenOptions } from '../actions/cloud.js'

export function registerCloud(program: Command): void {
  const cloud = program
    .command('cloud')
    .description('cloud-side tools: consume what gateways send, send them signed commands, make keys')

  cloud
    .command('consume')
    .description(
      'subscribe to the cloud broker, verify every gateway signature, open sealed payloads, drop duplicates by gateway sequence number, and print one JSON line per message',
    )
    .requiredOption('-c, --config <file>', 'cloud-side config (broker, trust, recipients)')
    .option('--count <n>', 'exit after this many verified, non-duplicate messages')
    .option('--timeout <seconds>', 'exit after this long')
    .option('--show-duplicates', 'print duplicates too (marked "duplicate": true)')
    .action(async (options: ConsumeOptions) => (await import('../actions/cloud.js')).consume(options))

  cloud
    .command('command')
    .description('sign a downlink command with the operator key and publish it to the cloud broker')
    .requiredOption('-c, --config <file>', 'cloud-side config (broker, operator key)')
    .requiredOption('--gateway <id>', 'the gateway that must deliver it')
    .requiredOption('--device <id>', 'the device it is for')
    .requiredOption(
      '--topic <topic>',
      "cloud topic to publish on (one of the gateway's cloud.downlink.topics)",
    )
    .option('--payload <text>', 'command payload (UTF-8)')
    .option('--payload-file <file>', 'command payload from a file')
    .action(async (options: CommandOptions) => (await import('../actions/cloud.js')).sendCommand(options))

  cloud
    .command('keygen')
    .description(
      'make an operator signing key (Ed25519) or an HPKE recipient key (X25519): <prefix>.key (0600) and <prefix>.pub',
    )
    .option(
      '--operator <prefix>',
      'operator key: the gateway trusts <prefix>.pub in cloud.downlink.operators',
    )
    .option('--recipient <prefix>', 'recipient key: the gateway seals to <prefix>.pub (cloud.recipients)')
    .action(async (options: KeygenOptions) => (await import('../actions/cloud.js')).keygen(options))
}
