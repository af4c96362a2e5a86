import type { Command } from 'commander'
import type { StartOptions } from '../actions/start.js'

export function registerStart(program: Command): void {
  program
    .command('start')
    .description(
      'run the gateway from a config file (reloads devices, policies and TLS listener certificates on SIGHUP or when their files change)',
    )
    .requiredOption('-c, --config <file>', 'the YAML config file')
    .action(async (options: StartOptions) => (await import('../actions/start.js')).start(options))
}
