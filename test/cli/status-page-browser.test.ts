/**
 * Issue 16, acceptance 3: the status page rendered in headless Chromium (Debian's `chromium`,
 * driven by playwright-core) while `edge-gateway start` runs against a real mosquitto:
 * - a device that just connected shows as connected, with its credentials and message count;
 * - after a cloud outage that held a backlog, the page shows the queue draining: what was drained
 *   of the peak, the drain bar, and the time to empty it at the current rate; then empty.
 * The screenshot of the draining page is what docs/observability.md shows
 * (EDGE_GATEWAY_SCREENSHOT=docs/status-page.png writes it there; otherwise into the test's folder).
 */
import { access, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { MqttClient } from 'mqtt'
import { type Browser, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { hashPassword } from '../../gateway/index.js'
import { type CloudMosquitto, startLabCloud } from '../helpers/mosquitto.js'
import { freePort } from '../helpers/ports.js'
import { terminate } from '../helpers/processes.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { connackCode, connectDevice } from '../integration/clients.js'
import { waitUntil } from '../integration/harness.js'
import { type StartedGateway, startGatewayCli } from './run-cli.js'

const CHROMIUM = '/usr/bin/chromium'
const PASSWORD = 'status-page-password'
/** Held during the outage; with one message in flight to the cloud, the drain lasts seconds. */
const BACKLOG = 8000

describe('the status page in headless Chromium', () => {
  let dir: string
  let cloud: CloudMosquitto
  let gateway: StartedGateway
  let browser: Browser
  let page: Page
  let lanPort: number
  let httpPort: number
  let device: MqttClient | undefined
  const linkUps = () => gateway.logs.filter((l) => l.msg === 'cloud link up').length
  /** Loads the page in Chromium and returns its text as a reader sees it. */
  const look = async () => {
    await page.goto(`http://127.0.0.1:${httpPort}/`)
    // biome-ignore lint/performance/useDomNodeTextContent: the text as rendered, what a reader sees
    return page.innerText('body')
  }

  beforeAll(async () => {
    try {
      await access(CHROMIUM)
    } catch {
      throw new Error(`${CHROMIUM} not found: apt-get install chromium (scripts/install-test-deps.sh does)`)
    }
    dir = await makeTempDir('edge-gw-status-page-')
    const lab = await startLabCloud(dir)
    cloud = lab.cloud
    lanPort = await freePort()
    httpPort = await freePort()
    const config = {
      gateway: { id: 'site-7', stateDir: join(dir, 'state') },
      log: { level: 'info', pretty: false },
      lan: {
        listeners: [{ type: 'tcp', host: '127.0.0.1', port: lanPort }],
        // The backlog is made by one device, faster than the default fair share.
        deviceRate: { messagesPerSecond: 100_000, burst: 100_000 },
      },
      devices: [
        { id: 'boiler-1', username: 'boiler-1', passwordHash: await hashPassword(PASSWORD) },
        { id: 'meter-2', psk: { identity: 'meter-2', keyFile: join(dir, 'meter-2.psk') } },
      ],
      cloud: {
        ...lab.link,
        inflight: 1,
        reconnect: { initialDelayMs: 100, maxDelayMs: 300 },
        topics: [{ local: 'devices/', cloud: 'sites/site-7/' }],
      },
      observability: { listen: `127.0.0.1:${httpPort}` },
    }
    await writeFile(join(dir, 'meter-2.psk'), '00112233445566778899aabbccddeeff\n', { mode: 0o600 })
    await writeFile(join(dir, 'gateway.yaml'), stringify(config), { mode: 0o600 })
    gateway = await startGatewayCli(join(dir, 'gateway.yaml'))
    await waitUntil(() => linkUps() === 1, 15_000, 'the cloud link up')
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      // This machine reaches no outside host: Chromium's own background connections stay off.
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    })
    page = await browser.newPage({ viewport: { width: 900, height: 1000 } })
  }, 90_000)

  afterAll(async () => {
    await device?.endAsync(true).catch(() => undefined)
    await browser?.close()
    if (gateway) await terminate(gateway.child)
    await cloud?.stop()
    if (dir) await removeDir(dir)
  })

  it('shows a device that just connected, with its credentials and messages', async () => {
    expect(await look()).toMatch(/boiler-1\tpassword\tnot seen since start\t0/)
    device = await connectDevice(lanPort, { username: 'boiler-1', password: PASSWORD, clientId: 'boiler-1' })
    await device.publishAsync('devices/boiler-1/temp', '61.5', { qos: 1 })
    const text = await look()
    expect(text).toContain('Devices (1 of 2 connected)')
    expect(text).toMatch(
      new RegExp(`boiler-1\\tpassword\\tconnected \\(tcp:${lanPort} from 127\\.0\\.0\\.1\\)\\t1`),
    )
    expect(text).toMatch(/meter-2\tpsk\tnot seen since start\t0/)
    expect(text).toMatch(/cloud link: connected for \d+ s/)
  })

  it('shows what a LAN client sent as text, never as markup: a username that is a script', async () => {
    // An unknown username is shown as the `who` of its security event; it comes from anyone on the LAN.
    const username = `<img src=x onerror="document.title='xss'"><script>document.title='xss'</script>`
    expect(
      await connackCode(lanPort, { username, password: 'nothing', clientId: 'probe', reconnectPeriod: 0 }),
    ).toBe(4)
    const text = await look()
    expect(text).toContain(username)
    expect(await page.title()).not.toBe('xss')
    expect(await page.locator('#events script, #events img').count()).toBe(0)
  })

  it('shows the queue draining after a cloud outage, then empty', async () => {
    await cloud.stop()
    await waitUntil(
      () => gateway.logs.some((l) => String(l.msg).startsWith('cloud link down')),
      15_000,
      'the cloud link down',
    )
    // The backlog: BACKLOG messages acknowledged by the gateway while the cloud is away.
    const client = device!
    for (let sent = 0; sent < BACKLOG; sent += 500) {
      await Promise.all(
        Array.from({ length: 500 }, (_, i) =>
          client.publishAsync('devices/boiler-1/temp', `${sent + i}`, { qos: 1 }),
        ),
      )
    }
    const held = await look()
    expect(held).toMatch(new RegExp(`${BACKLOG} held; not draining \\(waiting for the cloud\\)`))
    expect(held).toContain(`drained: 0 of the ${BACKLOG} held at the peak`)

    await cloud.restart()
    // Draining: some gone, some held, a rate and a time to empty it.
    let draining = ''
    const until = Date.now() + 30_000
    while (Date.now() < until) {
      const text = await look()
      const m = /drained: (\d+) of the (\d+) held at the peak/.exec(text)
      if (m && Number(m[1]) > 0 && /empty in about \d+ (s|min) at [\d.]+ msg\/s/.test(text)) {
        draining = text
        break
      }
      if (/Queue\s+held: 0 of/.test(text)) break
      await new Promise((r) => setTimeout(r, 200))
    }
    expect(draining, 'the page never showed the queue draining').not.toBe('')
    expect(draining).toMatch(/cloud link: connected/)
    const screenshot = resolve(process.env.EDGE_GATEWAY_SCREENSHOT ?? join(dir, 'status-page.png'))
    await page.screenshot({ path: screenshot, fullPage: true })
    await access(screenshot)

    await waitUntil(() => linkUps() === 2, 15_000, 'the cloud link up again')
    const end = Date.now() + 60_000
    let text = await look()
    while (!text.includes('empty;') && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 500))
      text = await look()
    }
    expect(text).toMatch(/Queue\s+held: 0 of/)
    expect(text).toContain('empty;')
    expect(text).not.toContain('drained:')
    expect(text).toMatch(new RegExp(`boiler-1\\tpassword\\tconnected .*\\t${BACKLOG + 1}`))
  }, 120_000)
})
