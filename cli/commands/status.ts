import type { Command } from 'commander'
import type { BridgeStatus } from '../../bridge/bridge.js'
import { loadConfig } from '../../config/index.js'
import { readStatusFile, STATUS_INTERVAL_MS, statusFilePath } from '../status-file.js'

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function describeLink(link: BridgeStatus['link']): string {
  switch (link.status) {
    case 'connected':
      return `connected since ${new Date(link.since).toISOString()}`
    case 'connecting':
      return `connecting (attempt ${link.attempt})`
    case 'waiting':
      return `down: ${link.cause}; retry in ${link.retryInMs} ms`
    default:
      return link.status
  }
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description(
      'show what a running gateway reports: queue, cloud link, tunnel, certificate (from <stateDir>/status.json)',
    )
    .requiredOption('-c, --config <file>', 'the gateway config file')
    .option('--json', 'print the status as JSON')
    .action(async (options: { config: string; json?: boolean }) => {
      const config = await loadConfig(options.config)
      const status = await readStatusFile(config.gateway.stateDir)
      if (!status) {
        process.stderr.write(
          `edge-gateway: no status in ${statusFilePath(config.gateway.stateDir)}: the gateway has not run with this config\n`,
        )
        process.exitCode = 1
        return
      }
      const ageMs = Date.now() - Date.parse(status.updatedAt)
      const running = status.state === 'running' && alive(status.pid) && ageMs < 5 * STATUS_INTERVAL_MS
      if (options.json) {
        process.stdout.write(`${JSON.stringify({ ...status, running }, null, 2)}\n`)
        if (!running) process.exitCode = 3
        return
      }
      const b = status.bridge as BridgeStatus
      const dropped = Object.entries(b.queue.dropped)
        .filter(([, n]) => n > 0)
        .map(([reason, n]) => `${reason} ${n}`)
      const lines = [
        `gateway      ${status.gateway} (pid ${status.pid}) ${running ? 'running' : `NOT RUNNING (last report ${Math.round(ageMs / 1000)} s ago, state ${status.state})`}`,
        `cloud link   ${describeLink(b.link)}${b.sending ? '' : ' (holding: tunnel not healthy)'}`,
        `queue        ${b.queue.depth} message(s), ${b.queue.bytes} bytes${b.queue.oldestAgeMs === null ? '' : `, oldest ${Math.round(b.queue.oldestAgeMs / 1000)} s`}`,
        `drain        ${b.drainRatePerSecond} msg/s; accepted ${b.accepted}, delivered ${b.delivered}, refused by cloud ${b.refusedByCloud}`,
        `dropped      ${dropped.length > 0 ? dropped.join(', ') : 'none'}`,
        `devices      ${status.lan.connectedClients} connected`,
        ...(b.certificate
          ? [
              `certificate  ${b.certificate.subject}, expires ${b.certificate.notAfter} (${b.certificate.daysLeft} days)`,
            ]
          : []),
        `tunnel       ${b.tunnel === undefined ? 'none configured' : JSON.stringify(b.tunnel)}`,
      ]
      process.stdout.write(`${lines.join('\n')}\n`)
      if (!running) process.exitCode = 3
    })
}
