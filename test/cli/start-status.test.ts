import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse, stringify } from 'yaml'
import { hashPassword } from '../../gateway/index.js'
import { mintLabPki, writeSecretFile } from '../../pki/index.js'
import { CloudMosquitto } from '../helpers/mosquitto.js'
import { freePort } from '../helpers/ports.js'
import { onLines, terminate } from '../helpers/processes.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { connackCode, connectDevice, publishOutcome } from '../integration/clients.js'
import { waitUntil } from '../integration/harness.js'
import { runCli, spawnCli } from './run-cli.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const PASSWORD = 'status-test-password'
const CLOUD_KEY = 'HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw='
const SEALED_TOPIC = 'devices/meter/sealed/kwh'
/** lan.payload.failuresBeforeDisconnect's default: the 21st refused payload closes the connection. */
const LIMIT = 20

/** A metric the docs name: its family and the labels they give (a value, or any value). */
interface DocumentedMetric {
  text: string
  family: string
  labels: Array<{ key: string; value?: string }>
}

/** Suffixes of metric names (`*_total` counters, gauges): the docs' other snake_case names (event names, files) have none. */
const METRIC =
  /^([a-z]+(?:_[a-z0-9]+)+?_(?:total|depth|bytes|capacity|clients|entries|messages|up|healthy|seconds|passwords|waiting|connections|left|days|rate))(?:\{([^}]*)\})?$/

/** Every metric name in README.md and docs/*.md, from backticked names. */
async function documentedMetrics(): Promise<DocumentedMetric[]> {
  const files = [
    join(ROOT, 'README.md'),
    ...(await readdir(join(ROOT, 'docs'))).filter((f) => f.endsWith('.md')).map((f) => join(ROOT, 'docs', f)),
  ]
  const found = new Map<string, DocumentedMetric>()
  for (const file of files) {
    for (const [, text] of (await readFile(file, 'utf8')).matchAll(/`([^`\n]+)`/g)) {
      const m = METRIC.exec(text!)
      if (!m) continue
      const labels = (m[2] ?? '')
        .split(',')
        .filter((l) => l.length > 0)
        .map((l) => {
          const [key, raw] = l.split('=')
          const value = raw === undefined ? undefined : JSON.parse(raw)
          return { key: key!, ...(value !== '...' && value !== undefined && { value: String(value) }) }
        })
      found.set(text!, { text: text!, family: m[1]!, labels })
    }
  }
  return [...found.values()]
}

/** The labels of a series name, as a map. */
function labelsOf(name: string): Map<string, string> {
  const inner = /\{(.*)\}$/.exec(name)?.[1]
  const out = new Map<string, string>()
  if (!inner) return out
  for (const [, k, v] of inner.matchAll(/([a-z_]+)="([^"]*)"/g)) out.set(k!, v!)
  return out
}

function covers(metric: DocumentedMetric, series: string): boolean {
  if (series.split('{')[0] !== metric.family) return false
  const labels = labelsOf(series)
  return metric.labels.every(
    (l) => labels.has(l.key) && (l.value === undefined || labels.get(l.key) === l.value),
  )
}

/** Keys that appear twice in one JSON object of `text` (JSON.parse would silently keep the last). */
function duplicateKeys(text: string): string[] {
  const dups: string[] = []
  const stack: Array<{ keys: Set<string> | null; expectKey: boolean }> = []
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]
    if (ch === '"') {
      let j = i + 1
      let s = ''
      while (j < text.length && text[j] !== '"') {
        s += text[j] === '\\' ? text[j]! + text[++j]! : text[j]!
        j++
      }
      const top = stack.at(-1)
      if (top?.keys && top.expectKey) {
        if (top.keys.has(s)) dups.push(s)
        top.keys.add(s)
        top.expectKey = false
      }
      i = j
    } else if (ch === '{') stack.push({ keys: new Set(), expectKey: true })
    else if (ch === '[') stack.push({ keys: null, expectKey: false })
    else if (ch === '}' || ch === ']') stack.pop()
    else if (ch === ',') {
      const top = stack.at(-1)
      if (top?.keys) top.expectKey = true
    }
  }
  return dups
}

/**
 * `edge-gateway start` as an operator runs it, against a real mosquitto at cloud.host 127.0.0.1
 * (no servername), with a `vpn` section watching a tunnel that is not there (so the vpn gauges
 * exist; the bridge holds, and makes no cloud connection around the missing tunnel): then refused
 * payloads, a wrong password, and what `status` and `status --json` say about them. A second
 * gateway, without the `vpn` section, connects to the same broker for the SNI check.
 */
describe('edge-gateway start and status: counters, logs, no IP as SNI', () => {
  let dir: string
  let configFile: string
  let cloud: CloudMosquitto
  let port: number
  let child: ReturnType<typeof spawnCli>
  const raw: string[] = []
  const logs: Array<Record<string, unknown>> = []
  let stderr = ''

  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-start-status-')
    const pki = await mintLabPki(join(dir, 'pki'))
    await mkdir(join(dir, 'cloud'), { mode: 0o700 })
    cloud = await CloudMosquitto.start({
      dir: join(dir, 'cloud'),
      caFile: pki.caFile,
      certFile: pki.serverCertFile,
      keyFile: pki.serverKeyFile,
    })
    await writeSecretFile(join(dir, 'meter.key'), '000102030405060708090a0b0c0d0e0f')
    port = await freePort()
    const passwordHash = await hashPassword(PASSWORD)
    const config = {
      gateway: { id: 'gw-status', stateDir: 'state' },
      log: { level: 'info', pretty: false },
      lan: {
        listeners: [{ type: 'tcp', host: '127.0.0.1', port }],
        protection: [{ topic: 'devices/+/sealed/#', mode: 'sealed' }],
      },
      devices: [
        {
          id: 'meter',
          username: 'meter',
          passwordHash,
          payloadKey: { kid: '0a', secretFile: join(dir, 'meter.key') },
        },
      ],
      cloud: {
        // An IP address and no servername: the certificate names 127.0.0.1; no SNI may be sent.
        host: '127.0.0.1',
        port: cloud.port,
        caFile: pki.caFile,
        certFile: pki.clientCertFile,
        keyFile: pki.clientKeyFile,
        reconnect: { initialDelayMs: 100, maxDelayMs: 1000 },
        control: { intervalSeconds: 1 },
        topics: [{ local: 'devices/', cloud: 'gw/' }],
      },
      vpn: {
        interfaceName: 'wgstatus0',
        manage: false,
        pollMs: 200,
        peer: { publicKey: CLOUD_KEY, allowedIps: ['127.0.0.1/32'] },
      },
    }
    configFile = join(dir, 'gateway.yaml')
    await writeFile(configFile, stringify(config), { mode: 0o600 })
    child = spawnCli(['start', '--config', configFile])
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk
    })
    onLines(child.stdout, (line) => {
      raw.push(line)
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>)
      } catch {
        logs.push({ msg: line })
      }
    })
    await waitUntil(() => logs.some((l) => l.msg === 'edge gateway started'), 15_000, 'gateway start')
    await waitUntil(() => logs.some((l) => l.event === 'tunnel_health'), 15_000, 'the first tunnel poll')
  })

  afterAll(async () => {
    if (child) await terminate(child)
    await cloud?.stop()
    await removeDir(dir)
  })

  it(`${LIMIT + 1} refused payloads close the connection, and the disconnect is logged at warn with the reason`, async () => {
    const meter = await connectDevice(port, { username: 'meter', password: PASSWORD, clientId: 'meter' })
    const outcomes: string[] = []
    for (let i = 0; i <= LIMIT; i++) outcomes.push(await publishOutcome(meter, SEALED_TOPIC, `not cose ${i}`))
    expect(outcomes).toEqual([...Array<string>(LIMIT).fill('acked'), 'closed'])
    await waitUntil(
      () => logs.some((l) => l.device === 'meter' && String(l.msg).startsWith('device disconnected')),
      10_000,
      'the disconnect log line',
    )
    const line = logs.find((l) => l.device === 'meter' && String(l.msg).startsWith('device disconnected'))
    expect(line).toMatchObject({
      level: 40,
      module: 'gateway',
      device: 'meter',
      clientId: 'meter',
      reason: 'payload_failures',
      count: LIMIT + 1,
      limit: LIMIT,
      last: 'malformed',
      msg: `device disconnected by the gateway: ${LIMIT + 1} refused payloads within 10 s (limit ${LIMIT}); the last: malformed`,
    })
    expect(logs.filter((l) => l.msg === 'device disconnected' && l.device === 'meter')).toEqual([])
    expect(await connackCode(port, { username: 'meter', password: 'wrong', clientId: 'meter' })).toBe(4)
  })

  it('status --json shows every metric the docs name, with exact counts for what happened', async () => {
    const documented = await documentedMetrics()
    // The docs name at least these; the extraction must not silently find nothing.
    expect(documented.map((d) => d.text)).toEqual(
      expect.arrayContaining([
        'payload_rejected_total{reason}',
        'security_events_total{event}',
        'uplink_dropped_total{reason,qos}',
        'vpn_handshake_age_seconds',
        'lan_connected_clients',
      ]),
    )
    // status.json is written every 2 s: read it until it has caught up (bounded).
    let metrics: Record<string, number> = {}
    const deadline = Date.now() + 10_000
    for (;;) {
      const result = await runCli(['status', '--config', configFile, '--json'])
      expect(result.code, result.stderr).toBe(0)
      metrics = (JSON.parse(result.stdout) as { bridge: { metrics: Record<string, number> } }).bridge.metrics
      const settled =
        metrics['payload_rejected_total{reason="malformed"}'] === LIMIT + 1 &&
        metrics['security_events_total{event="auth_bad_password"}'] === 1
      if (settled || Date.now() > deadline) break
      await new Promise((r) => setTimeout(r, 500))
    }
    expect(metrics['payload_rejected_total{reason="malformed"}']).toBe(LIMIT + 1)
    expect(metrics['payload_rejected_total{reason="bad_tag"}']).toBe(0)
    expect(metrics['security_events_total{event="payload_rejected"}']).toBe(LIMIT + 1)
    expect(metrics['security_events_total{event="auth_bad_password"}']).toBe(1)
    expect(metrics['security_events_total{event="publish_denied"}']).toBe(0)
    // No connection while the tunnel is not in place (its interface missing).
    expect(metrics.cloud_connect_attempts_total).toBe(0)
    expect(metrics.cloud_disconnects_total).toBe(0)
    // The tunnel is not there: the vpn gauges say so.
    expect(metrics.vpn_tunnel_up).toBe(0)
    expect(metrics.vpn_handshake_age_seconds).toBe(-1)

    const names = Object.keys(metrics)
    const missing = documented.filter((d) => !names.some((n) => covers(d, n))).map((d) => d.text)
    expect(missing).toEqual([])
    // And the other way round: everything the gateway counts is documented.
    const families = new Set(documented.map((d) => d.family))
    expect([...new Set(names.map((n) => n.split('{')[0]!))].filter((f) => !families.has(f))).toEqual([])
  })

  it('status says it in words: security events, other counters, and what the queue bytes are', async () => {
    const result = await runCli(['status', '--config', configFile])
    expect(result.code, result.stderr).toBe(0)
    const lines = result.stdout.split('\n')
    expect(lines).toContain(`security     auth_bad_password 1, payload_rejected ${LIMIT + 1}`)
    expect(lines).toContain(`counters     payload_rejected_total{reason="malformed"} ${LIMIT + 1}`)
    expect(lines.find((l) => l.startsWith('queue '))).toMatch(
      /^queue {8}0 message\(s\) held; \d+ bytes on disk \(queue files; acknowledged records count until their segment is deleted\)$/,
    )
    expect(lines.find((l) => l.startsWith('cloud link '))).toMatch(
      /^cloud link {3}down: the tunnel is not in place: no connection is made around it \(holding: tunnel not healthy\) \(0 connection attempt\(s\), 0 disconnect\(s\)\)$/,
    )
  })

  it('the bridge status line carries the counters that are not zero, and no log line has a key twice', async () => {
    await waitUntil(
      () =>
        logs.some(
          (l) =>
            l.msg === 'bridge status' &&
            (l.status as { metrics: Record<string, number> }).metrics[
              'payload_rejected_total{reason="malformed"}'
            ] ===
              LIMIT + 1,
        ),
      10_000,
      'a status line after the refusals',
    )
    const status = logs.filter((l) => l.msg === 'bridge status').at(-1)!
    expect(status.module).toBe('bridge')
    const metrics = (status.status as { metrics: Record<string, number> }).metrics
    expect(Object.values(metrics).every((v) => v !== 0)).toBe(true)
    expect(metrics['security_events_total{event="auth_bad_password"}']).toBe(1)
    expect(raw.filter((line) => duplicateKeys(line).length > 0)).toEqual([])
  })

  it('no DEP0123 (an IP address as TLS ServerName) or any other warning on stderr, with the cloud link up', async () => {
    expect(stderr).toBe('')
    // The same config without the vpn section, on a port and state folder of its own: it connects.
    const plain = stringify({
      ...parse(await readFile(configFile, 'utf8')),
      gateway: { id: 'gw-status-plain', stateDir: 'state-plain' },
      lan: { listeners: [{ type: 'tcp', host: '127.0.0.1', port: await freePort() }] },
      vpn: undefined,
    })
    const plainFile = join(dir, 'plain.yaml')
    await writeFile(plainFile, plain, { mode: 0o600 })
    const second = spawnCli(['start', '--config', plainFile])
    let errors = ''
    second.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      errors += chunk
    })
    const lines: string[] = []
    onLines(second.stdout, (line) => lines.push(line))
    let whileUp: string
    try {
      await waitUntil(
        () => lines.some((l) => l.includes('"msg":"cloud link up"')),
        15_000,
        'the second cloud link',
      )
      // A moment for a warning the handshake would cause to reach stderr.
      await new Promise((r) => setTimeout(r, 500))
      whileUp = errors
    } finally {
      await terminate(second)
    }
    expect(whileUp).not.toContain('DEP0123')
    expect(whileUp).toBe('')
  })
})
