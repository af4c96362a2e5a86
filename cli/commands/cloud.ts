import type { Command } from 'commander'
import type { CommandOptions, ConsumeOptions, KeygenOptions } from '../actions/cloud.js'
import type {
  DeviceKeyOptions,
  DevicePskOptions,
  RotateOptions,
  TrustOptions,
} from '../actions/cloud-rotate.js'

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
    .option(
      '--member <name>',
      "with group: in the config, this member's name (default group.member, or the host name)",
    )
    .action(async (options: ConsumeOptions & { member?: string }) =>
      (await import('../actions/cloud.js')).consume(options),
    )

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
    .command('rotate')
    .description(
      "rotate a gateway's client certificate: ask it for a CSR (its new key never leaves it), check it, issue the certificate from your CA, push it signed, and wait until the gateway has switched to it (exit 1 with its reason if it refused or rolled back)",
    )
    .requiredOption('-c, --config <file>', 'cloud-side config (broker, trust, operator key)')
    .requiredOption('--gateway <id>', 'the gateway to rotate')
    .requiredOption('--ca-cert <file>', "the CA certificate that issues gateways' client certificates (PEM)")
    .requiredOption('--ca-key <file>', "that CA's private key (PEM, 0600)")
    .option('--days <n>', 'validity of the new certificate in days (default 90)')
    .option('--timeout <seconds>', 'how long to wait for each answer of the gateway (default 120)')
    .action(async (options: RotateOptions) => (await import('../actions/cloud-rotate.js')).rotate(options))

  cloud
    .command('trust')
    .description(
      'push a new bundle of CA certificates the gateway verifies the cloud broker with; it keeps the old bundle beside it for the overlap',
    )
    .requiredOption('-c, --config <file>', 'cloud-side config (broker, trust, operator key)')
    .requiredOption('--gateway <id>', 'the gateway to update')
    .requiredOption('--ca-bundle <file>', 'the new CA certificates (PEM)')
    .option('--overlap-days <n>', 'days the old bundle stays trusted beside the new one (default 30)')
    .option('--timeout <seconds>', 'how long to wait for the answer of the gateway (default 60)')
    .action(async (options: TrustOptions) => (await import('../actions/cloud-rotate.js')).trust(options))

  cloud
    .command('device-psk')
    .description(
      "give a gateway's TLS-PSK device a new key: written to --out (0600) for the device, pushed encrypted to the gateway's certificate key; the old identity stays accepted for the overlap",
    )
    .requiredOption('-c, --config <file>', 'cloud-side config (broker, trust, operator key)')
    .requiredOption('--gateway <id>', 'the gateway the device connects to')
    .requiredOption('--device <id>', 'the device (one with a psk in the gateway config)')
    .requiredOption('--out <file>', 'where the new key goes, hex (0600), to give to the device')
    .option('--identity <identity>', 'the new PSK identity (default: the old one with -r2, -r3, ...)')
    .option('--overlap-hours <n>', 'hours the old key stays accepted (default 24)')
    .option('--timeout <seconds>', 'how long to wait for the answer of the gateway (default 60)')
    .action(async (options: DevicePskOptions) =>
      (await import('../actions/cloud-rotate.js')).devicePsk(options),
    )

  cloud
    .command('device-key')
    .description(
      "give a gateway's payload device a new master secret: the gateway makes it and sends it to the device sealed under its current key, retained on --topic; the old key stays accepted for the overlap",
    )
    .requiredOption('-c, --config <file>', 'cloud-side config (broker, trust, operator key)')
    .requiredOption('--gateway <id>', 'the gateway the device connects to')
    .requiredOption('--device <id>', 'the device (one with a payloadKey in the gateway config)')
    .requiredOption(
      '--topic <topic>',
      'the LAN topic the device takes key updates on (no LAN protection; the device may subscribe)',
    )
    .option('--overlap-hours <n>', 'hours the old key stays accepted (default 24)')
    .option('--timeout <seconds>', 'how long to wait for the answer of the gateway (default 60)')
    .action(async (options: DeviceKeyOptions) =>
      (await import('../actions/cloud-rotate.js')).deviceKey(options),
    )

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
