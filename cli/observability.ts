import { timingSafeEqual } from 'node:crypto'
import { rm, writeFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { join } from 'node:path'
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client'
import { splitHostPort } from '../config/checks.js'
import type { GatewayConfig } from '../config/index.js'
import { readBearerToken } from '../config/secret-files.js'
import type { Logger } from '../core/logger.js'
import type { Metrics } from '../core/metrics.js'
import type { SecurityEvents } from '../core/security-events.js'
import { renderStatusPage, type StatusPageData } from './status-page.js'

/** What /healthz looks at. */
export interface HealthSources {
  /** The LAN listeners are bound. */
  listening(): boolean
  /** Whether forwarding runs, the link's state, and whether the bridge may send (tunnel health). */
  bridge(): { forwarding: string; link: string; sending: boolean; store: 'disk' | 'memory' }
  /** What the status page at `/` shows. */
  page(): StatusPageData
}

export interface Observability {
  /** The bound port (for a `listen` port of 0 in tests). */
  readonly port: number
  close(): Promise<void>
}

/** `name{a="x",b="y"}` -> its family and labels. */
function parseSeries(series: string): { family: string; labels: Record<string, string> } {
  const brace = series.indexOf('{')
  if (brace === -1) return { family: series, labels: {} }
  const labels: Record<string, string> = {}
  for (const [, k, v] of series.slice(brace).matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)) labels[k!] = v!
  return { family: series.slice(0, brace), labels }
}

/**
 * The gateway's counters and gauges (core/metrics.ts, the series `status --json` shows) as
 * prom-client metrics, read at each scrape: a family ending in `_total` is a counter, any other a
 * gauge; label values come from the gateway's own bounded sets. Plus prom-client's process metrics
 * (memory, CPU, file descriptors, event loop lag), prefixed `edge_gateway_`.
 */
function registryFor(metrics: Metrics): { registry: Registry; refresh: () => void } {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'edge_gateway_' })
  /** The series of the latest snapshot, by family: one snapshot per scrape (it reads every gauge). */
  let current = new Map<string, Array<{ labels: Record<string, string>; value: number }>>()
  /** Takes the snapshot and registers the families that appeared since the last scrape. */
  const refresh = () => {
    const next = new Map<string, Array<{ labels: Record<string, string>; value: number }>>()
    for (const [series, value] of Object.entries(metrics.snapshot())) {
      const { family, labels } = parseSeries(series)
      const list = next.get(family) ?? []
      list.push({ labels, value })
      next.set(family, list)
    }
    current = next
    for (const [family, list] of next) {
      if (registry.getSingleMetric(family)) continue
      register(family, new Set(list.flatMap((s) => Object.keys(s.labels))))
    }
  }
  const register = (family: string, labelNames: Set<string>) => {
    const fill = (metric: Counter | Gauge) => {
      metric.reset()
      for (const { labels, value } of current.get(family) ?? []) {
        if (metric instanceof Counter) metric.inc(labels, value)
        else metric.set(labels, value)
      }
    }
    const options = {
      name: family,
      help: `edge-gateway ${family} (docs/bridge.md#metrics)`,
      labelNames: [...labelNames],
      registers: [registry],
      collect(this: Counter | Gauge) {
        fill(this)
      },
    }
    if (family.endsWith('_total')) new Counter(options)
    else new Gauge(options)
  }
  refresh()
  return { registry, refresh }
}

/**
 * `observability.listen`: an HTTP server with `/metrics` (Prometheus text format) and `/healthz`
 * (200 when the LAN listeners are up, the queue folder takes a write, forwarding runs and the cloud
 * link is connected and may send; 503 with the failing checks otherwise). With
 * `observability.tokenFile`, every request needs `Authorization: Bearer <token>`.
 */
export async function startObservability(
  config: Readonly<GatewayConfig>,
  metrics: Metrics,
  health: HealthSources,
  logger: Logger,
  security: SecurityEvents,
): Promise<Observability | undefined> {
  const listen = config.observability.listen
  if (listen === undefined) return undefined
  const { host, port } = splitHostPort(listen)
  // Read again here (the config check read it too): a token too short to guess, never an empty one.
  const token = config.observability.tokenFile
    ? await readBearerToken(config.observability.tokenFile)
    : undefined
  const { registry, refresh } = registryFor(metrics)
  const queueDir = join(config.gateway.stateDir, 'queue')

  /** Without a token file, every request; with one, a request whose bearer token is the file's (else a security event). */
  const authorized = (req: IncomingMessage, path: string): boolean => {
    if (token === undefined) return true
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1]
    const presented = Buffer.from(bearer ?? '', 'utf8')
    if (presented.length === token.length && timingSafeEqual(presented, token)) return true
    security.report(
      'observability_refused',
      {
        remoteAddress: req.socket.remoteAddress ?? 'unknown',
        reason: bearer === undefined ? 'no_token' : 'wrong_token',
        path: path.slice(0, 64),
      },
      `observability: ${bearer === undefined ? 'a request without a bearer token' : 'a wrong bearer token'} refused (401)`,
    )
    return false
  }

  const checks = async (): Promise<Record<string, { ok: boolean; detail: string }>> => {
    const b = health.bridge()
    const listening = health.listening()
    let writable = { ok: true, detail: 'memory queue' }
    if (b.store === 'disk') {
      const probe = join(queueDir, '.healthz')
      writable = await writeFile(probe, 'ok', { mode: 0o600 })
        .then(() => rm(probe, { force: true }))
        .then(
          () => ({ ok: true, detail: queueDir }),
          (err: NodeJS.ErrnoException) => ({ ok: false, detail: `${queueDir}: ${err.code ?? err.message}` }),
        )
    }
    return {
      listeners: { ok: listening, detail: listening ? 'bound' : 'not bound' },
      queue: writable,
      forwarding: { ok: b.forwarding !== 'stopped', detail: b.forwarding },
      cloud: {
        ok: b.link === 'connected' && b.sending,
        detail: b.sending ? b.link : `${b.link}, held (tunnel not healthy)`,
      },
    }
  }

  // Node checks the header and request timeouts below every connectionsCheckingInterval (30 s by
  // default), so a client that dribbles its headers held a connection for up to 35 s, not 5.
  const server = createServer(
    { connectionsCheckingInterval: 1_000 },
    (req: IncomingMessage, res: ServerResponse) => {
      const reply = (status: number, type: string, body: string) => {
        res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' })
        res.end(body)
      }
      const path = (req.url ?? '/').split('?')[0] ?? '/'
      // The token first: a request without it learns nothing (not even which methods there are),
      // and is reported whatever its method.
      if (!authorized(req, path)) return reply(401, 'text/plain', 'a bearer token is needed\n')
      if (req.method !== 'GET') return reply(405, 'text/plain', 'GET only\n')
      if (path === '/metrics') {
        refresh()
        registry.metrics().then(
          (text) => reply(200, registry.contentType, text),
          (err: Error) => reply(500, 'text/plain', `${err.message}\n`),
        )
        return
      }
      if (path === '/healthz') {
        checks().then((result) => {
          const ok = Object.values(result).every((c) => c.ok)
          reply(
            ok ? 200 : 503,
            'application/json',
            `${JSON.stringify({ status: ok ? 'ok' : 'failing', checks: result })}\n`,
          )
        })
        return
      }
      if (path === '/') return reply(200, 'text/html; charset=utf-8', renderStatusPage(health.page()))
      reply(404, 'text/plain', 'see /, /metrics and /healthz\n')
    },
  )
  server.requestTimeout = 10_000
  server.headersTimeout = 5_000
  server.maxConnections = 32
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  })
  const address = server.address()
  const bound = typeof address === 'object' && address ? address.port : port
  logger.info({ listen, port: bound }, `observability: /metrics and /healthz on ${host}:${bound}`)
  return {
    port: bound,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
