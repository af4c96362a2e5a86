import type { Command } from 'commander'
import type { StatusOptions } from '../actions/status.js'

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description(
      'show what a running gateway reports: queue, cloud link, tunnel, certificate (from <stateDir>/status.json)',
    )
    .requiredOption('-c, --config <file>', 'the gateway config file')
    .option('--json', 'print the status as JSON')
    .action(async (options: StatusOptions) => (await import('../actions/status.js')).showStatus(options))
}
