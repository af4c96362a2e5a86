import type { BridgeStatus } from '../bridge/bridge.js'
import type { RecentSecurityEvent } from '../core/security-events.js'
import type { DeviceView } from '../gateway/broker.js'

/** What the status page shows, read at each request. */
export interface StatusPageData {
  gatewayId: string
  now: number
  devices: DeviceView[]
  bridge: BridgeStatus
  recentEvents: readonly RecentSecurityEvent[]
}

/** Devices listed at most (the connected ones first). */
const MAX_DEVICES = 500

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
}

/** Text for HTML: every value on the page goes through this (device ids and client ids come from the LAN). */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c] as string)
}

function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000))
  if (s < 120) return `${s} s ago`
  if (s < 7200) return `${Math.round(s / 60)} min ago`
  return `${Math.round(s / 3600)} h ago`
}

function duration(seconds: number): string {
  if (seconds < 120) return `${Math.ceil(seconds)} s`
  if (seconds < 7200) return `${Math.ceil(seconds / 60)} min`
  return `${(seconds / 3600).toFixed(1)} h`
}

/**
 * The status page: server-rendered HTML, no script and no outside asset; it reloads itself every
 * 5 s (a meta refresh). Devices (connected, or when last seen), the cloud link and tunnel, the
 * queue with a drain bar and the time to empty it during a backlog, certificate expiry, and the
 * last security events.
 */
export function renderStatusPage(d: StatusPageData): string {
  const b = d.bridge
  const q = b.queue
  const link =
    b.link.status === 'connected'
      ? `connected for ${ago(d.now - b.link.since).replace(' ago', '')}`
      : b.link.status === 'waiting'
        ? `down: ${b.link.cause}${b.link.retryInMs > 0 ? `; next attempt in ${Math.round(b.link.retryInMs / 100) / 10} s` : ''}`
        : b.link.status
  const fill = q.capacity > 0 ? Math.min(100, (q.depth / q.capacity) * 100) : 0
  // During a backlog: how much of it has gone since it peaked.
  const drained = b.backlogPeak > 0 ? Math.min(100, ((b.backlogPeak - q.depth) / b.backlogPeak) * 100) : 100
  const toEmpty =
    q.depth === 0
      ? 'empty'
      : b.drainRatePerSecond > 0 && b.sending && b.link.status === 'connected'
        ? `${q.depth} held; empty in about ${duration(q.depth / b.drainRatePerSecond)} at ${b.drainRatePerSecond} msg/s`
        : `${q.depth} held; not draining (${!b.sending ? 'held: tunnel not healthy' : b.link.status === 'connected' ? 'no acknowledgement from the cloud yet' : 'waiting for the cloud'})`
  const devices = [...d.devices]
    .sort((x, y) => y.connections.length - x.connections.length || x.id.localeCompare(y.id))
    .slice(0, MAX_DEVICES)
  const deviceRows = devices
    .map((dev) => {
      const state =
        dev.connections.length > 0
          ? `connected (${dev.connections.map((c) => `${escapeHtml(c.listener)} from ${escapeHtml(c.remoteAddress)}`).join(', ')})`
          : dev.lastSeen !== undefined
            ? `last seen ${ago(d.now - dev.lastSeen)}`
            : 'not seen since start'
      const cls = dev.connections.length > 0 ? 'ok' : 'idle'
      return `<tr class="${cls}"><td>${escapeHtml(dev.id)}</td><td>${escapeHtml(dev.credentials.join(', '))}</td><td>${state}</td><td>${dev.published}</td></tr>`
    })
    .join('\n')
  const certificates = (b.certificates ?? [])
    .map(
      (c) =>
        `<tr class="${c.warning ? 'warn' : 'ok'}"><td>${escapeHtml(c.use)}</td><td>${escapeHtml(c.subject ?? '')}</td><td>${
          c.daysLeft === undefined ? `${c.ageDays} day(s) old` : `${c.daysLeft} day(s) left`
        }</td></tr>`,
    )
    .join('\n')
  const events = [...d.recentEvents]
    .reverse()
    .map(
      (e) =>
        `<tr><td>${ago(d.now - e.at)}</td><td>${escapeHtml(e.event)}</td><td>${escapeHtml(e.who)}</td><td>${escapeHtml(e.reason ?? '')}</td></tr>`,
    )
    .join('\n')
  const connected = d.devices.filter((x) => x.connections.length > 0).length
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>edge-gateway ${escapeHtml(d.gatewayId)}</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}h1{font-size:1.3em}h2{font-size:1.05em;margin-top:1.5em}
table{border-collapse:collapse}td,th{padding:.2em .8em;border-bottom:1px solid #ddd;text-align:left}
.ok td:first-child{border-left:4px solid #2a2}.idle td:first-child{border-left:4px solid #bbb}.warn td:first-child{border-left:4px solid #d80}
.bar{width:24em;height:1em;background:#eee;border:1px solid #ccc}.bar div{height:100%;background:#48c}.drain div{background:#2a2}
</style></head><body>
<h1>edge-gateway ${escapeHtml(d.gatewayId)}</h1>
<h2>Cloud</h2>
<p id="link">cloud link: ${escapeHtml(link)}${b.tunnel === undefined ? '' : `; tunnel: ${b.sending ? 'healthy' : 'not healthy'}`}; forwarding: ${escapeHtml(b.forwarding.status)}</p>
<p>delivered ${b.delivered}, accepted ${b.accepted}, refused by the cloud ${b.refusedByCloud}</p>
<h2>Queue</h2>
<p>held: ${q.depth} of ${q.capacity}</p>
<div class="bar" id="fill" title="held: ${q.depth} of ${q.capacity}"><div style="width:${fill.toFixed(1)}%"></div></div>
${
  q.depth > 0
    ? `<p>drained: ${b.backlogPeak - q.depth} of the ${b.backlogPeak} held at the peak</p>
<div class="bar drain" id="drain" title="drained ${drained.toFixed(0)} %"><div style="width:${drained.toFixed(1)}%"></div></div>
`
    : ''
}<p id="queue">${escapeHtml(toEmpty)}; ${q.bytes} bytes on ${q.store}${q.oldestAgeMs === null ? '' : `; oldest ${ago(q.oldestAgeMs)}`}</p>
<h2>Devices (${connected} of ${d.devices.length} connected)</h2>
<table id="devices"><tr><th>device</th><th>credentials</th><th>state</th><th>messages</th></tr>
${deviceRows}
</table>
<h2>Certificates</h2>
<table id="certificates"><tr><th>use</th><th>subject</th><th>expiry</th></tr>
${certificates}
</table>
<h2>Last security events</h2>
<table id="events"><tr><th>when</th><th>event</th><th>who</th><th>reason</th></tr>
${events}
</table>
</body></html>
`
}
