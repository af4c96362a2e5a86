import type { Command } from 'commander'
import type { ConfigOption } from '../actions/vpn.js'

export function registerVpn(program: Command): void {
  const vpn = program
    .command('vpn')
    .description('the WireGuard tunnel to the cloud (the `vpn` section of the config; see docs/vpn.md)')

  vpn
    .command('keys')
    .description(
      "make the gateway's WireGuard key pair (files 0600, kept if they exist) and print its public key for the cloud side; also a preshared key if vpn.peer.presharedKeyFile is set",
    )
    .requiredOption('-c, --config <file>', 'the YAML config file')
    .option('--overwrite', 'replace existing key files (the cloud side then needs the new public key)')
    .action(async (options: ConfigOption & { overwrite?: boolean }) =>
      (await import('../actions/vpn.js')).makeKeys(options),
    )

  vpn
    .command('up')
    .description(
      'bring the tunnel up from the config (wireguard-go, if used, keeps running after this command)',
    )
    .requiredOption('-c, --config <file>', 'the YAML config file')
    .action(async (options: ConfigOption) => (await import('../actions/vpn.js')).up(options))

  vpn
    .command('down')
    .description(
      'bring the tunnel down (an interface that is not there is fine); refused while a running gateway owns it',
    )
    .requiredOption('-c, --config <file>', 'the YAML config file')
    .option('--force', 'bring down a tunnel a running gateway owns (that gateway then stops)')
    .action(async (options: ConfigOption & { force?: boolean }) =>
      (await import('../actions/vpn.js')).down(options),
    )

  vpn
    .command('mode')
    .description(
      'print what the config asks of the tunnel: off (no vpn section), managed (the gateway brings it up) or system (the system does; the gateway watches it)',
    )
    .requiredOption('-c, --config <file>', 'the YAML config file')
    .action(async (options: ConfigOption) => (await import('../actions/vpn.js')).mode(options))

  vpn
    .command('status')
    .description(
      'print the tunnel state: up, handshake age, bytes received and sent, endpoint, healthy (exit 1 when not healthy)',
    )
    .requiredOption('-c, --config <file>', 'the YAML config file')
    .option('--json', 'print the state as one JSON object')
    .action(async (options: ConfigOption & { json?: boolean }) =>
      (await import('../actions/vpn.js')).status(options),
    )
}
