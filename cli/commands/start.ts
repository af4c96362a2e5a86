import type { Command } from 'commander'
import { loadConfig } from '../../config/index.js'
import { createLogger } from '../../core/logger.js'
import { startEdgeGateway } from '../app.js'
import { untilSignal } from '../shutdown.js'

export function registerStart(program: Command): void {
  program
    .command('start')
    .description('run the gateway from a config file')
    .requiredOption('-c, --config <file>', 'the YAML config file')
    .action(async (options: { config: string }) => {
      const config = await loadConfig(options.config)
      const logger = createLogger({
        level: config.log.level,
        ...(config.log.pretty !== undefined && { pretty: config.log.pretty }),
      })
      const gateway = await startEdgeGateway(config, logger)
      await untilSignal(() => gateway.close())
    })
}
