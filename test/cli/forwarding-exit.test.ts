import { mkdir, readdir, rename, rmdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { hashPassword } from '../../gateway/index.js'
import { mintLabPki } from '../../pki/index.js'
import { CloudConsumer } from '../helpers/cloud-consumer.js'
import { CloudMosquitto } from '../helpers/mosquitto.js'
import { freePort } from '../helpers/ports.js'
import { exitOf, onLines, terminate } from '../helpers/processes.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { connectDevice, publishOutcome } from '../integration/clients.js'
import { waitUntil } from '../integration/harness.js'
import { spawnCli } from './run-cli.js'

const PASSWORD = 'exit-test-password'
const COUNT = 30
const PAYLOAD = 'x'.repeat(200)

/**
 * `edge-gateway start` under a queue read error that does not go away: after its
 * restarts the gateway exits 1 (so a supervisor restarts it), and started again on
 * the repaired folder it delivers everything it acknowledged.
 */
describe('edge-gateway start exits 1 when forwarding cannot be recovered', () => {
  let dir: string
  let configFile: string
  let cloud: CloudMosquitto
  let consumer: CloudConsumer
  let port: number
  let child: ReturnType<typeof spawnCli> | undefined
  const logs: Array<Record<string, unknown>> = []
  let stderr = ''

  const start = () => {
    const c = spawnCli(['start', '--config', configFile])
    c.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk
    })
    onLines(c.stdout, (line) => {
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>)
      } catch {
        logs.push({ msg: line })
      }
    })
    return c
  }

  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-forwarding-exit-')
    const pki = await mintLabPki(join(dir, 'pki'))
    await mkdir(join(dir, 'cloud'), { mode: 0o700 })
    cloud = await CloudMosquitto.start({
      dir: join(dir, 'cloud'),
      caFile: pki.caFile,
      certFile: pki.serverCertFile,
      keyFile: pki.serverKeyFile,
      persistence: true,
    })
    consumer = await CloudConsumer.start({
      host: '127.0.0.1',
      port: cloud.port,
      caFile: pki.caFile,
      certFile: pki.clientCertFile,
      keyFile: pki.clientKeyFile,
      topic: 'gw/#',
      clientId: 'exit-consumer',
    })
    port = await freePort()
    const config = {
      gateway: { id: 'gw-exit', stateDir: 'state' },
      log: { level: 'info', pretty: false },
      lan: { listeners: [{ type: 'tcp', host: '127.0.0.1', port }] },
      devices: [{ id: 'meter', username: 'meter', passwordHash: await hashPassword(PASSWORD) }],
      cloud: {
        host: '127.0.0.1',
        port: cloud.port,
        caFile: pki.caFile,
        certFile: pki.clientCertFile,
        keyFile: pki.clientKeyFile,
        reconnect: { initialDelayMs: 100, maxDelayMs: 1000 },
        queue: { quotaBytes: 65_536 },
        topics: [{ local: 'devices/', cloud: 'gw/' }],
      },
    }
    configFile = join(dir, 'gateway.yaml')
    await writeFile(configFile, stringify(config), { mode: 0o600 })
  })

  afterAll(async () => {
    if (child) await terminate(child)
    await consumer?.stop()
    await cloud?.stop()
    await removeDir(dir)
  })

  it('exits 1 after the restarts; started again, it delivers every acknowledged message', async () => {
    child = start()
    // Both: the LAN listeners are open once the gateway says it started, the link may come up before.
    await waitUntil(() => logs.some((l) => l.msg === 'edge gateway started'), 15_000, 'gateway started')
    await waitUntil(() => logs.some((l) => l.msg === 'cloud link up'), 15_000, 'cloud link up')
    await cloud.stop()
    const meter = await connectDevice(port, { username: 'meter', password: PASSWORD, clientId: 'meter' })
    const acknowledged = new Set<string>()
    for (let i = 0; i < COUNT; i++) {
      const payload = `exit-${i}:${PAYLOAD}`
      expect(await publishOutcome(meter, 'devices/meter/exit', payload)).toBe('acked')
      acknowledged.add(payload)
    }
    meter.end(true)
    const queueDir = join(dir, 'state', 'queue')
    const oldest = join(queueDir, (await readdir(queueDir)).filter((f) => f.endsWith('.log')).sort()[0]!)
    await rename(oldest, `${oldest}.aside`)
    await mkdir(oldest)

    await cloud.restart()
    const exit = await Promise.race([
      exitOf(child),
      new Promise<undefined>((r) => setTimeout(r, 45_000, undefined)),
    ])
    expect(exit).toEqual({ code: 1, signal: null })
    expect(
      logs.filter((l) => String(l.msg).startsWith('uplink pipeline failed')).map((l) => l.attempt),
    ).toEqual([1, 2, 3, 4, 5])
    expect(logs.filter((l) => l.level === 60).map((l) => String(l.msg).slice(0, 26))).toEqual([
      'uplink forwarding stopped:',
    ])
    expect(logs.at(-1)?.msg).toBe('edge gateway stopped')
    expect(stderr).toMatch(
      /^edge-gateway: uplink forwarding stopped: Cannot read the queue folder .+; exiting\n$/,
    )

    // The supervisor's restart, on the repaired folder.
    await rmdir(oldest)
    await rename(`${oldest}.aside`, oldest)
    child = start()
    expect(await consumer.waitForAll(acknowledged, 30_000)).toBe(0)
  })
})
