import type { Command } from 'commander'
import { loadConfig } from '../../config/index.js'
import { describeError } from '../../core/errors.js'
import { createLogger } from '../../core/logger.js'
import { startEdgeGateway } from '../app.js'
import { reloadableFiles, watchForReload } from '../reload-watch.js'
import { untilSignal } from '../shutdown.js'

export function registerStart(program: Command): void {
  program
    .command('start')
    .description(
      'run the gateway from a config file (reloads devices and policies on SIGHUP or when their files change)',
    )
    .requiredOption('-c, --config <file>', 'the YAML config file')
    .action(async (options: { config: string }) => {
      const config = await loadConfig(options.config)
      const logger = createLogger({
        level: config.log.level,
        ...(config.log.pretty !== undefined && { pretty: config.log.pretty }),
      })
      const gateway = await startEdgeGateway(config, logger)
      let reloading = Promise.resolve()
      const reload = (why: string) => {
        reloading = reloading.then(async () => {
          try {
            const next = await loadConfig(options.config)
            const report = await gateway.reload(next)
            logger.info({ why, ...report }, 'reloaded devices and policies')
          } catch (err) {
            logger.error(
              { why, err: describeError(err) },
              'reload refused: the old devices and policies stay in force',
            )
          }
        })
      }
      const stopWatching = watchForReload(reloadableFiles(options.config, config), reload)
      await untilSignal(async () => {
        stopWatching()
        await reloading
        await gateway.close()
      })
    })
}
