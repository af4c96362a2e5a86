/**
 * Issue 16, item 4 in part: `observability.listen` serves /metrics (Prometheus text format, through
 * prom-client) and /healthz. `edge-gateway start` runs against a real mosquitto; a scripted scenario
 * (a good device, a wrong password, a denied publish, a refused sealed payload, a cloud outage) must
 * show in /metrics with exact counts; /healthz turns 503 while the cloud is away and while the queue
 * folder cannot be written (the state folder is a small tmpfs the test mounts and fills: a full
 * disk stops root too, where file modes would not).
 */
import { execFileSync } from 'node:child_process'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { hashPassword } from '../../gateway/index.js'
import { type CloudMosquitto, startLabCloud } from '../helpers/mosquitto.js'
import { freePort } from '../helpers/ports.js'
import { terminate } from '../helpers/processes.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { connackCode, connectDevice, publishOutcome } from '../integration/clients.js'
import { waitUntil } from '../integration/harness.js'
import { type StartedGateway, startGatewayCli } from './run-cli.js'

const PASSWORD = 'observability-password'

/** The samples of a Prometheus text exposition, by series as written (`name{a="b"}`). */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const at = line.lastIndexOf(' ')
    out.set(line.slice(0, at), Number(line.slice(at + 1)))
  }
  return out
}

describe('observability.listen: /metrics and /healthz of a running gateway', () => {
  let dir: string
  let state: string
  let cloud: CloudMosquitto
  let gateway: StartedGateway
  let lanPort: number
  let httpPort: number
  let mounted = false
  const url = (path: string) => `http://127.0.0.1:${httpPort}${path}`
  const metrics = async () => samples(await (await fetch(url('/metrics'))).text())
  const health = async () => {
    const res = await fetch(url('/healthz'))
    return { status: res.status, body: (await res.json()) as { checks: Record<string, { ok: boolean }> } }
  }
  const linkUps = () => gateway.logs.filter((l) => l.msg === 'cloud link up').length
  /** Polls /metrics until `series` reads `value` (10 s at most). */
  const metricReaches = async (series: string, value: number) => {
    const until = Date.now() + 10_000
    while ((await metrics()).get(series) !== value) {
      if (Date.now() > until) throw new Error(`${series} never reached ${value}`)
      await new Promise((r) => setTimeout(r, 100))
    }
  }

  beforeAll(async () => {
    if (process.getuid?.() !== 0) {
      throw new Error('this test mounts a tmpfs for the state folder: run it as root (CI does)')
    }
    dir = await makeTempDir('edge-gw-observability-')
    state = join(dir, 'state')
    await mkdir(state, { mode: 0o700 })
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m,mode=0700', 'tmpfs', state])
    mounted = true
    const lab = await startLabCloud(dir)
    cloud = lab.cloud
    lanPort = await freePort()
    httpPort = await freePort()
    const config = {
      gateway: { id: 'gw-obs', stateDir: state },
      log: { level: 'info', pretty: false },
      lan: {
        listeners: [{ type: 'tcp', host: '127.0.0.1', port: lanPort }],
        protection: [{ topic: 'devices/+/sealed/#', mode: 'sealed' }],
      },
      devices: [{ id: 'good', username: 'good', passwordHash: await hashPassword(PASSWORD) }],
      cloud: {
        ...lab.link,
        reconnect: { initialDelayMs: 100, maxDelayMs: 500 },
        topics: [{ local: 'devices/', cloud: 'gw/' }],
      },
      observability: { listen: `127.0.0.1:${httpPort}` },
    }
    await writeFile(join(dir, 'gateway.yaml'), stringify(config), { mode: 0o600 })
    gateway = await startGatewayCli(join(dir, 'gateway.yaml'))
    await waitUntil(() => linkUps() === 1, 15_000, 'the cloud link up')
  }, 60_000)

  afterAll(async () => {
    if (gateway) await terminate(gateway.child)
    await cloud?.stop()
    if (mounted) execFileSync('umount', ['-l', state])
    if (dir) await removeDir(dir)
  })

  it('after a scripted scenario /metrics shows each count exactly, as counters and gauges with process metrics', async () => {
    expect((await health()).status).toBe(200)
    const good = await connectDevice(lanPort, { username: 'good', password: PASSWORD, clientId: 'good' })
    await metricReaches(`lan_listener_connections{listener="tcp:${lanPort}",type="tcp"}`, 1)
    const page = await fetch(url('/'))
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8')
    const html = await page.text()
    expect(html).toContain('<h1>edge-gateway gw-obs</h1>')
    expect(html).toContain(
      `<td>good</td><td>password</td><td>connected (tcp:${lanPort} from 127.0.0.1)</td><td>0</td>`,
    )
    expect(html).toMatch(/cloud link: connected for \d+ s/)
    expect(html).not.toContain('<script')
    expect(await publishOutcome(good, 'devices/good/reading', '21.5')).toBe('acked')
    // A refused sealed payload (not COSE), then a denied publish (not the device's own tree: the
    // connection is closed, as the default policy says).
    expect(await publishOutcome(good, 'devices/good/sealed/t', 'not cose')).toBe('acked')
    expect(await publishOutcome(good, 'elsewhere/topic', 'x')).toBe('closed')
    expect(await connackCode(lanPort, { username: 'good', password: 'wrong', clientId: 'good-2' })).toBe(4)
    await metricReaches('uplink_delivered_total', 1)
    await good.endAsync(true)

    await cloud.stop()
    await metricReaches('cloud_disconnects_total', 1)
    const during = await health()
    expect(during.status).toBe(503)
    expect(during.body.checks.cloud).toMatchObject({ ok: false })
    expect(during.body.checks.queue).toMatchObject({ ok: true })
    expect((await metrics()).get('cloud_link_up')).toBe(0)
    // A message held during the outage: the page shows the backlog, then the queue empty again.
    const late = await connectDevice(lanPort, { username: 'good', password: PASSWORD, clientId: 'good' })
    expect(await publishOutcome(late, 'devices/good/reading', 'held')).toBe('acked')
    await late.endAsync()
    const held = await (await fetch(url('/'))).text()
    expect(held).toContain('1 held; not draining (waiting for the cloud)')
    expect(held).toMatch(/<td>good<\/td><td>password<\/td><td>last seen \d+ s ago<\/td><td>2<\/td>/)
    expect(held).toMatch(/<td>auth_bad_password<\/td><td>good<\/td>/)
    expect(held).toMatch(/<td>publish_denied<\/td><td>good<\/td>/)
    await cloud.restart()
    await waitUntil(() => linkUps() === 2, 15_000, 'the cloud link up again')
    expect((await health()).status).toBe(200)
    await metricReaches('uplink_delivered_total', 2)
    expect(await (await fetch(url('/'))).text()).toContain('<p id="queue">empty;')

    const text = await (await fetch(url('/metrics'))).text()
    expect(text).toContain('# TYPE uplink_accepted_total counter')
    expect(text).toContain('# TYPE uplink_queue_depth gauge')
    const m = samples(text)
    expect({
      accepted: m.get('uplink_accepted_total'),
      delivered: m.get('uplink_delivered_total'),
      badPassword: m.get('security_events_total{event="auth_bad_password"}'),
      publishDenied: m.get('security_events_total{event="publish_denied"}'),
      payloadRejected: m.get('security_events_total{event="payload_rejected"}'),
      payloadRejectedByReason: [...m]
        .filter(([k]) => k.startsWith('payload_rejected_total{'))
        .reduce((a, [, v]) => a + v, 0),
      disconnects: m.get('cloud_disconnects_total'),
      queueDepth: m.get('uplink_queue_depth'),
      oldestAge: m.get('uplink_queue_oldest_age_seconds'),
      linkUp: m.get('cloud_link_up'),
      lanConnections: m.get(`lan_listener_connections{listener="tcp:${lanPort}",type="tcp"}`),
    }).toEqual({
      accepted: 2,
      delivered: 2,
      badPassword: 1,
      publishDenied: 1,
      payloadRejected: 1,
      payloadRejectedByReason: 1,
      disconnects: 1,
      queueDepth: 0,
      oldestAge: 0,
      linkUp: 1,
      lanConnections: 0,
    })
    expect(m.has('uplink_drain_rate')).toBe(true)
    expect(m.get('edge_gateway_process_resident_memory_bytes')).toBeGreaterThan(10_000_000)
    expect(m.get('certificate_days_left{use="cloud_client"}')).toBeGreaterThan(300)
  }, 60_000)

  it('/healthz turns 503 when the queue folder cannot be written (a full disk), and back to 200 when it can', async () => {
    const filler = join(state, 'filler')
    // dd stops (and fails) at ENOSPC: the tmpfs is full.
    try {
      execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=1M', 'count=128'], { stdio: 'ignore' })
    } catch {
      // expected: "No space left on device"
    }
    try {
      const failing = await health()
      expect(failing.status).toBe(503)
      expect(failing.body.checks.queue).toMatchObject({
        ok: false,
        detail: expect.stringContaining('ENOSPC'),
      })
    } finally {
      await rm(filler, { force: true })
    }
    expect((await health()).status).toBe(200)
  }, 30_000)

  it('answers only GET on /, /metrics and /healthz', async () => {
    expect((await fetch(url('/nothing'))).status).toBe(404)
    expect((await fetch(url('/metrics'), { method: 'POST' })).status).toBe(405)
  })
})
