import type { Command } from 'commander'
import type { AddOptions, PepperOptions, RotateOptions } from '../actions/device.js'
import { registerSimulate } from './simulate.js'

const collect = (value: string, previous: string[] = []) => [...previous, value]

const PEPPER_FILE_HELP =
  'hash with this password pepper ($scrypt-pepper$, cheaper scrypt): lan.passwordPepperFile'
const CONFIG_HELP = "hash with the config's lan.passwordPepperFile, if it sets one"

export function registerDevice(program: Command): void {
  const device = program.command('device').description('manage devices')
  registerSimulate(device)
  device
    .command('hash-password')
    .description(
      'read a password on standard input and print its scrypt hash for `passwordHash` in the config',
    )
    .option('--pepper-file <file>', PEPPER_FILE_HELP)
    .option('--config <file>', CONFIG_HELP)
    .action(async (options: PepperOptions) =>
      (await import('../actions/device.js')).hashPasswordFromStdin(options),
    )

  device
    .command('pepper <file>')
    .description(
      'write a new 32-byte password pepper (mode 0600) for lan.passwordPepperFile; never overwrites a file',
    )
    .action(async (file: string) => (await import('../actions/device.js')).writePepper(file))

  device
    .command('add <id>')
    .description(
      'make credentials for a new device and print the `devices:` entry to add to the config (a password is read on standard input)',
    )
    .option('--username <name>', 'give the device a username; its password is read on standard input')
    .option('--psk', 'give the device a TLS-PSK identity and a new random key (written 0600 into --key-dir)')
    .option(
      '--sealed',
      'give the device a payload master secret (COSE sealing, MAC, one-time tokens); printed once for the firmware',
    )
    .option('--kid <hex>', 'payload key id, 1 to 6 bytes as hex (default: 1 random byte; must be unique)')
    .option('--aead <alg>', 'AES-CCM-16-64-128, A128GCM, A256GCM or ChaCha20/Poly1305', 'AES-CCM-16-64-128')
    .option('--key-dir <dir>', 'where key files go', 'keys')
    .option(
      '--client-id <pattern>',
      'a client id the device may use (repeatable; `*` matches any run)',
      collect,
    )
    .option('--group <name>', 'a group for policy rules (repeatable)', collect)
    .option('--pepper-file <file>', PEPPER_FILE_HELP)
    .option('--config <file>', CONFIG_HELP)
    .action(async (id: string, options: AddOptions) =>
      (await import('../actions/device.js')).addDevice(id, options),
    )

  device
    .command('rotate <id>')
    .description(
      'give a TLS-PSK device a new identity and key (new 0600 key file) and keep the old ones accepted for an overlap; rewrites the config, which a running gateway applies at once',
    )
    .requiredOption('-c, --config <file>', 'the gateway config holding the device')
    .option('--overlap-hours <hours>', 'how long the old identity and key stay accepted', '24')
    .option('--identity <identity>', 'the new PSK identity (default: the old one with -r2, -r3, ...)')
    .option('--key-dir <dir>', 'where the new key file goes (default: beside the old one)')
    .action(async (id: string, options: RotateOptions) =>
      (await import('../actions/device.js')).rotateDevicePsk(id, options),
    )
}
