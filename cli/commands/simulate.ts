import type { Command } from 'commander'
import type { SimulatorMode } from '../../device/simulator.js'
import type { SimulateOptions } from '../actions/simulate.js'

export const MODES: readonly SimulatorMode[] = ['psk', 'password', 'token', 'sealed', 'mac', 'hpke']

export function registerSimulate(device: Command): void {
  device
    .command('simulate')
    .description(
      'run simulated devices from a gateway config against that gateway, in one LAN mode (psk, password, token, sealed, mac, hpke)',
    )
    .requiredOption('-c, --config <file>', 'the gateway config (listeners, devices and their key files)')
    .requiredOption('--mode <mode>', MODES.join(', '))
    .requiredOption('--devices <ids>', 'comma-separated device ids from the config')
    .option('--password <password>', 'the password, for --mode password (all listed devices)')
    .option('--messages <n>', 'readings each device publishes at QoS 1', '10')
    .option('--interval <ms>', 'pause between readings', '1000')
    .option('--topic <template>', 'topic; %d is the device id', 'devices/%d/telemetry')
    .option(
      '--state-dir <dir>',
      'where simulated devices keep sequence numbers (default: <stateDir>/simulator)',
    )
    .option('--port <port>', "the listener's port, when the config's is 0 or differs")
    .option(
      '--host <host>',
      "the gateway's address, when it is not the listener's (another host or container)",
    )
    .option('--hpke-kid <hex>', 'recipient key id, for --mode hpke')
    .option('--hpke-public-key <hex>', 'recipient X25519 public key (32 bytes hex), for --mode hpke')
    .action(async (options: SimulateOptions) => (await import('../actions/simulate.js')).runSimulate(options))
}
