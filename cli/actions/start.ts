import { resolve } from 'node:path'
import { loadConfig } from '../../config/index.js'
import { describeError } from '../../core/errors.js'
import { createLogger } from '../../core/logger.js'
import type { ReloadReport } from '../../gateway/index.js'
import { startEdgeGateway } from '../app.js'
import { EXIT_RUNTIME } from '../fail.js'
import { releaseLaunchHup } from '../launch-hup.js'
import { reloadableFiles, watchForReload } from '../reload-watch.js'
import { untilSignal } from '../shutdown.js'

/** At most this many device ids are named per list in the reload log line. */
const LISTED = 10

/** "devices: 2 added (a, b), 1 removed (c), 14 configured; 1 connection(s) closed, 0 subscription(s) revoked". */
export function describeReload(report: ReloadReport): string {
  const ids = (list: string[]) =>
    list.length === 0
      ? ''
      : ` (${list.slice(0, LISTED).join(', ')}${list.length > LISTED ? `, and ${list.length - LISTED} more` : ''})`
  return (
    `devices: ${report.devicesAdded.length} added${ids(report.devicesAdded)}, ` +
    `${report.devicesRemoved.length} removed${ids(report.devicesRemoved)}, ${report.devices} configured; ` +
    `${report.clientsDisconnected} connection(s) closed, ${report.subscriptionsRevoked} subscription(s) revoked`
  )
}

export interface StartOptions {
  config: string
}

/**
 * `edge-gateway start`: runs the gateway until a signal, reloading devices, policies and the `tls`
 * listeners' certificates on SIGHUP or when their files change.
 */
export async function start(options: StartOptions): Promise<void> {
  // SIGHUP (`systemctl reload`) is held from the process's first line (cli/launch-hup.ts), since
  // its default action would end the process with a status systemd takes for a clean exit, so
  // Restart=on-failure would not bring it back: a SIGHUP while the gateway starts is a reload once
  // it is up; one while it stops is ignored.
  let hupWhileStarting = false
  const hupDuringStart = () => {
    hupWhileStarting = true
  }
  process.on('SIGHUP', hupDuringStart)
  if (releaseLaunchHup()) hupWhileStarting = true
  const config = await loadConfig(options.config)
  const logger = createLogger({
    level: config.log.level,
    ...(config.log.pretty !== undefined && { pretty: config.log.pretty }),
  })
  // The other signals are taken before the gateway starts: one that comes while it starts stops it
  // once it is up (the default action would kill it half-way, with files being written).
  let stop: () => Promise<void> = async () => undefined
  let startFailed = false
  const signalled = untilSignal(async () => {
    await starting.catch(() => undefined)
    if (!startFailed) await stop()
  })
  const starting = startEdgeGateway(config, logger, { configFile: resolve(options.config) })
  const gateway = await starting.catch((err: unknown) => {
    startFailed = true
    throw err
  })
  let reloading = Promise.resolve()
  const reload = (why: string) => {
    reloading = reloading.then(async () => {
      try {
        const next = await loadConfig(options.config)
        const report = await gateway.reload(next)
        // A device added by this reload has a key file to watch too.
        watching.follow(reloadableFiles(options.config, next))
        logger.info(
          {
            why,
            ...report,
            devicesAdded: report.devicesAdded.slice(0, LISTED),
            devicesRemoved: report.devicesRemoved.slice(0, LISTED),
          },
          `reloaded devices and policies: ${describeReload(report)}`,
        )
        if (report.restartNeeded.length > 0) {
          logger.warn(
            { why, restartNeeded: report.restartNeeded, event: 'reload_needs_restart' },
            `not applied by a reload, changed in the config: ${report.restartNeeded.join(', ')}; they take effect at the next restart (systemctl restart edge-gateway)`,
          )
        }
        for (const refused of report.certificateErrors) {
          logger.error(
            { why, listener: refused.listener, event: 'listener_certificate_refused' },
            `${refused.error}: the listener keeps serving its previous certificate`,
          )
        }
      } catch (err) {
        logger.error(
          { why, err: describeError(err) },
          'reload refused: the old devices and policies stay in force',
        )
      }
    })
  }
  const watching = watchForReload(reloadableFiles(options.config, config), reload)
  process.off('SIGHUP', hupDuringStart)
  if (hupWhileStarting) reload('SIGHUP during start-up')
  let stopping: Promise<void> | undefined
  stop = () =>
    (stopping ??= (async () => {
      // Kept until the process exits: nothing reloads any more, and a SIGHUP must not kill it.
      process.on('SIGHUP', () => undefined)
      watching.stop()
      await reloading
      await gateway.close()
    })())
  // Forwarding given up (docs/bridge.md#when-the-queue-cannot-be-read), or the managed tunnel gone
  // (docs/vpn.md): stop and exit 1 for the supervisor.
  const failed = gateway.failed.then(async (err) => {
    await stop()
    // The uplink's forwarding given up, or the managed tunnel gone (docs/vpn.md).
    const what =
      (err as { code?: unknown }).code === 'VPN_ERR_TUNNEL_LOST' ? '' : 'uplink forwarding stopped: '
    process.stderr.write(`edge-gateway: ${what}${err.message}; exiting\n`)
    process.exitCode = EXIT_RUNTIME
    // Exit even if some handle still holds the loop: the supervisor must see the failure.
    await new Promise<void>((resolve) => logger.flush(() => resolve()))
    process.exit()
  })
  await Promise.race([signalled, failed])
}
