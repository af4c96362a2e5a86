import type { Command } from 'commander'
import type { LabOptions } from '../actions/lab.js'

export function registerLab(program: Command): void {
  program
    .command('lab')
    .description(
      'run a complete lab on loopback: lab PKI, LAN broker (plain and TLS-PSK), an embedded cloud broker that requires client certificates, the bridge, and two simulated devices',
    )
    .option('--state-dir <dir>', 'where the lab writes its PKI, keys and config', 'lab-state')
    .option('--base-port <port>', 'LAN plain listener port; TLS-PSK is +1, the cloud broker +2', '11883')
    .option('--interval <ms>', 'how often each simulated device publishes', '1000')
    .option('--duration <s>', 'stop by itself after this many seconds (default: run until Ctrl-C)')
    .option('--log-level <level>', 'gateway log level (logs go to stderr)', 'warn')
    .action(async (options: LabOptions) => (await import('../actions/lab.js')).runLab(options))

  program
    .command('lab-setup <dir>')
    .description(
      'make the container lab (docker-compose.yml) into <dir>: lab PKI, device credentials in four LAN modes, WireGuard and HPKE keys, the gateway, cloud broker and consumer configs; nothing when <dir> has them',
    )
    .action(async (dir: string) => {
      const made = await (await import('../lab/compose.js')).prepareComposeLab(dir)
      process.stdout.write(
        made === 'made' ? `lab-setup: made the lab in ${dir}\n` : `lab-setup: ${dir} has the lab already\n`,
      )
    })
}
