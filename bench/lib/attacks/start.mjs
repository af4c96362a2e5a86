/**
 * Starts what a run needs, each stopped by PID through `cleanup` (last started,
 * first stopped): the cloud mosquitto (mutual TLS, require_certificate), the
 * cloud subscriber, the gateway as a user runs it, RSS sampling, the
 * legitimate devices and the attacker.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startCloud } from '../cloud.mjs'
import { startGateway } from '../gateway.mjs'
import { freePort, waitForPort } from '../ports.mjs'
import { hasExited, spawnScript, stopProcess } from '../processes.mjs'
import { FLOODER_MAX } from './compromised.mjs'
import { linkStatus, openFileLimits, readStatus, sampleRss } from './monitor.mjs'
import { DEVICE_INDEX, FLOODER, gatewayConfig, LEGIT, PSK_DEVICE } from './setup.mjs'
import { sleep } from './wire.mjs'

const script = (name) => fileURLToPath(new URL(name, import.meta.url))
/** Messages per legitimate device at most (hours at 50 msg/s). */
const LEGIT_MAX_COUNTER = 400_000

export async function startAll(setup, { ratePerSecond, cleanup, log }) {
  const cloud = await startCloud(setup)
  cleanup.push(() => cloud.stop())

  const subscriber = spawnScript(script('cloud-subscriber.mjs'))
  cleanup.push(() => {
    subscriber.send({ type: 'exit' })
    return stopProcess(subscriber.child, 2_000, 1_000)
  })
  const maxPerDevice = []
  for (const [id, index] of Object.entries(DEVICE_INDEX))
    maxPerDevice[index] = id === FLOODER ? FLOODER_MAX : LEGIT_MAX_COUNTER
  const text = (file) => readFile(file, 'utf8')
  const { pki } = setup
  await subscriber.request(
    {
      type: 'init',
      config: {
        endpoint: {
          transport: 'mtls',
          host: '127.0.0.1',
          port: cloud.port,
          tls: {
            ca: await text(pki.caFile),
            cert: await text(pki.subscriberCertFile),
            key: await text(pki.subscriberKeyFile),
            servername: 'localhost',
          },
        },
        devices: DEVICE_INDEX,
        maxPerDevice,
      },
    },
    'ready',
  )

  const dir = join(setup.root, 'gateway')
  await mkdir(dir, { mode: 0o700 })
  const tcpPort = await freePort()
  const pskPort = await freePort()
  const configFile = join(dir, 'gateway.yaml')
  const config = gatewayConfig({ setup, tcpPort, pskPort, cloudPort: cloud.port })
  // JSON is YAML: the gateway reads it as its usual config file.
  await writeFile(configFile, JSON.stringify(config, null, 2), { mode: 0o600 })
  const logFile = join(dir, 'gateway.log')
  const gateway = startGateway({ dir, configFile, logFile })
  cleanup.push(() => stopProcess(gateway, 10_000))
  const statusFile = join(dir, 'state', 'status.json')
  for (const port of [tcpPort, pskPort])
    await waitForPort(port, { timeoutMs: 30_000, gone: () => hasExited(gateway), what: 'the gateway' })
  const linkDeadline = performance.now() + 30_000
  while (linkStatus(readStatus(statusFile)) !== 'connected') {
    if (hasExited(gateway) || performance.now() > linkDeadline)
      throw new Error(`the gateway's cloud link did not come up (see ${logFile}, --keep keeps it)`)
    await sleep(200)
  }
  const rss = sampleRss(gateway.pid)
  cleanup.push(() => rss.stop())
  log(`gateway pid ${gateway.pid} (plain ${tcpPort}, TLS-PSK ${pskPort}), cloud mosquitto pid ${cloud.pid}`)

  const legit = spawnScript(script('legit.mjs'))
  cleanup.push(() => stopProcess(legit.child, 2_000, 500))
  await legit.request(
    {
      type: 'init',
      config: {
        tcpPort,
        pskPort,
        ratePerSecond,
        devices: LEGIT.map((id) => ({
          id,
          index: DEVICE_INDEX[id],
          password: setup.devices[id].password,
          maxCounter: LEGIT_MAX_COUNTER,
        })),
        psk: { id: PSK_DEVICE, psk: setup.devices[PSK_DEVICE].psk },
      },
    },
    'ready',
  )
  const attacker = spawnScript(script('attacker.mjs'))
  cleanup.push(() => stopProcess(attacker.child, 2_000, 500))
  const flooder = setup.devices[FLOODER]
  await attacker.request(
    { type: 'init', config: { tcpPort, pskPort, flooder: { id: flooder.id, password: flooder.password } } },
    'ready',
  )
  const gatewayFileLimits = openFileLimits(gateway.pid)
  return { cloud, subscriber, gateway, gatewayFileLimits, logFile, statusFile, rss, legit, attacker }
}
