import type { BridgeStatus } from '../../bridge/bridge.js'
import type { ExpiryEntry } from '../../bridge/rotation/expiry.js'
import { loadConfig } from '../../config/index.js'
import { readStatusFile, STATUS_INTERVAL_MS, type StatusSnapshot, statusFilePath } from '../status-file.js'

export function alive(pid: number): boolean {
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
      // 0: waiting for something else than a timer (the tunnel to be in place).
      return `down: ${link.cause}${link.retryInMs > 0 ? `; retry in ${link.retryInMs} ms` : ''}`
    default:
      return link.status
  }
}

function describeQueue(q: BridgeStatus['queue']): string {
  const bytes =
    q.store === 'memory'
      ? `${q.bytes} bytes in memory (records held)`
      : `${q.bytes} bytes on disk (queue files; acknowledged records count until their segment is deleted)`
  const oldest = q.oldestAgeMs === null ? '' : `, oldest ${Math.round(q.oldestAgeMs / 1000)} s`
  return `${q.depth} message(s) held${oldest}; ${bytes}`
}

function describeForwarding(f: BridgeStatus['forwarding'] | undefined): string {
  if (!f) return 'unknown'
  switch (f.status) {
    case 'running':
      return 'running'
    case 'restarting':
      return `restarting after an error (restart ${f.attempt} of ${f.of} in ${f.retryInMs} ms): ${f.cause}`
    default:
      return `STOPPED: ${f.cause}; new messages for the cloud are refused`
  }
}

function describeDeadLetters(d: BridgeStatus['deadLetters'] | undefined): string {
  if (!d) return 'unknown'
  const reasons = Object.entries(d.byReason)
    .filter(([, n]) => n > 0)
    .map(([reason, n]) => `${reason} ${n}`)
  const retrying = d.retrying > 0 ? ` (${d.retrying} being retried)` : ''
  const held =
    d.depth === 0 ? 'none' : `${d.depth} message(s) held aside, not sent${retrying}: ${reasons.join(', ')}`
  return `${held}; ${d.bytes} of ${d.quotaBytes} bytes${d.depth > 0 ? ' (edge-gateway deadletter list)' : ''}`
}

/** Whether the gateway that wrote `status` still runs: its state, its pid, a recent write. */
export function isRunning(status: StatusSnapshot): boolean {
  const ageMs = Date.now() - Date.parse(status.updatedAt)
  return status.state === 'running' && alive(status.pid) && ageMs < 5 * STATUS_INTERVAL_MS
}

const SECURITY = /^security_events_total\{event="([^"]+)"\}$/

/** Shown on the drain line already, or gauges shown elsewhere: not repeated on the counters line. */
const SHOWN = new Set([
  'uplink_accepted_total',
  'uplink_delivered_total',
  'uplink_dead_letter_total{reason="cloud_refused"}',
  'cloud_connect_attempts_total',
  'cloud_disconnects_total',
])

/** Security events by name, and every other counter that is not zero. */
function describeCounters(metrics: Record<string, number>): { security: string; counters: string } {
  const security: string[] = []
  const counters: string[] = []
  for (const [name, value] of Object.entries(metrics)) {
    if (value === 0 || !name.split('{')[0]!.endsWith('_total')) continue
    const event = SECURITY.exec(name)?.[1]
    if (event !== undefined) security.push(`${event} ${value}`)
    else if (!SHOWN.has(name)) counters.push(`${name} ${value}`)
  }
  return {
    security: security.length > 0 ? security.join(', ') : 'none',
    counters: counters.length > 0 ? counters.join(', ') : 'none',
  }
}

export interface StatusOptions {
  config: string
  json?: boolean
}

/** One line of the expiry watch: `expiry       cloud CA CN=..., serial ..., 311 days left (until ...)`. */
function describeExpiry(e: ExpiryEntry): string {
  const left =
    e.daysLeft === undefined
      ? `${e.ageDays} day(s) old`
      : `${e.daysLeft < 0 ? 'EXPIRED' : `${e.daysLeft} day(s) left`} (until ${e.notAfter})`
  return `expiry       ${e.use}${e.subject ? ` ${e.subject}` : ''}${e.serial ? `, serial ${e.serial}` : ''}: ${left}${e.warning ? ' WARNING' : ''}`
}

/** `edge-gateway status`: what the running gateway last wrote to <stateDir>/status.json. */
export async function showStatus(options: StatusOptions): Promise<void> {
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
  const running = isRunning(status)
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ ...status, running }, null, 2)}\n`)
    if (!running) process.exitCode = 3
    return
  }
  const b = status.bridge as BridgeStatus
  const dropped = Object.entries(b.queue.dropped)
    .filter(([, n]) => n > 0)
    .map(([reason, n]) => `${reason} ${n}`)
  const metrics = b.metrics ?? {}
  const counted = describeCounters(metrics)
  const lines = [
    `gateway      ${status.gateway} (pid ${status.pid}) ${running ? 'running' : `NOT RUNNING (last report ${Math.round(ageMs / 1000)} s ago, state ${status.state})`}`,
    `cloud link   ${describeLink(b.link)}${b.sending ? '' : ' (holding: tunnel not healthy)'} (${metrics.cloud_connect_attempts_total ?? 0} connection attempt(s), ${metrics.cloud_disconnects_total ?? 0} disconnect(s))`,
    `forwarding   ${describeForwarding(b.forwarding)}`,
    `queue        ${describeQueue(b.queue)}`,
    `dead letters ${describeDeadLetters(b.deadLetters)}`,
    `drain        ${b.drainRatePerSecond} msg/s; accepted ${b.accepted}, delivered ${b.delivered}, refused by cloud ${b.refusedByCloud}`,
    `dropped      ${dropped.length > 0 ? dropped.join(', ') : 'none'}`,
    `devices      ${status.lan.connectedClients} connected`,
    `security     ${counted.security}`,
    `counters     ${counted.counters}`,
    ...(b.certificate
      ? [
          `certificate  ${b.certificate.subject}, serial ${b.certificate.serial}, expires ${b.certificate.notAfter} (${b.certificate.daysLeft} days)`,
        ]
      : []),
    ...(b.certificates ?? []).map(describeExpiry),
    `tunnel       ${b.tunnel === undefined ? 'none configured' : JSON.stringify(b.tunnel)}`,
  ]
  process.stdout.write(`${lines.join('\n')}\n`)
  if (!running) process.exitCode = 3
}
