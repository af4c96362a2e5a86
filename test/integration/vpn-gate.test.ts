import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { type EdgeGateway, startEdgeGateway } from '../../cli/app.js'
import { type ConfigInput, loadConfig } from '../../config/index.js'
import { createLogger } from '../../core/logger.js'
import { hashPassword } from '../../gateway/index.js'
import { mintLabPki } from '../../pki/index.js'
import { CloudMosquitto } from '../helpers/mosquitto.js'
import { MosquittoSub } from '../helpers/mosquitto-sub.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { sleep } from './clients.js'
import { LogCapture, waitUntil } from './harness.js'

const CLOUD_KEY = 'HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw='
const MESSAGES = 20

/**
 * The tunnel's health gates the bridge, in process: a `vpn` section with `manage: false` watching
 * an interface that does not exist keeps the tunnel unhealthy, so the bridge connects to the
 * (loopback) cloud broker but sends nothing, while devices are acknowledged into the queue.
 * (The tunnel returning and the backlog draining: test/e2e/gateway-tunnel.test.ts.)
 */
describe('an unhealthy tunnel holds the bridge', () => {
  let dir: string
  let cloud: CloudMosquitto
  let sub: MosquittoSub
  let gateway: EdgeGateway | undefined
  const logs = new LogCapture()

  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-vpn-gate-')
    const pki = await mintLabPki(join(dir, 'pki'))
    await mkdir(join(dir, 'cloud'), { mode: 0o700 })
    cloud = await CloudMosquitto.start({
      dir: join(dir, 'cloud'),
      caFile: pki.caFile,
      certFile: pki.serverCertFile,
      keyFile: pki.serverKeyFile,
    })
    sub = await MosquittoSub.start({
      host: '127.0.0.1',
      port: cloud.port,
      caFile: pki.caFile,
      certFile: pki.clientCertFile,
      keyFile: pki.clientKeyFile,
      topic: 'gw/#',
      qos: 1,
    })
    const config: ConfigInput = {
      gateway: { id: 'gw-gate', stateDir: 'state' },
      log: { level: 'info' },
      lan: { listeners: [{ type: 'tcp', host: '127.0.0.1', port: 0 }] },
      devices: [{ id: 'dev', username: 'dev', passwordHash: await hashPassword('gate-test') }],
      cloud: {
        host: '127.0.0.1',
        port: cloud.port,
        servername: 'localhost',
        caFile: pki.caFile,
        certFile: pki.clientCertFile,
        keyFile: pki.clientKeyFile,
        reconnect: { initialDelayMs: 100, maxDelayMs: 1000 },
        topics: [{ local: 'devices/', cloud: 'gw/' }],
      },
      vpn: {
        interfaceName: 'wgitgate0',
        manage: false,
        pollMs: 100,
        peer: { publicKey: CLOUD_KEY, allowedIps: ['127.0.0.1/32'] },
      },
    }
    const file = join(dir, 'gateway.yaml')
    await writeFile(file, stringify(config), { mode: 0o600 })
    gateway = await startEdgeGateway(
      await loadConfig(file),
      createLogger({ level: 'info', destination: logs }),
    )
  })

  afterAll(async () => {
    await gateway?.close()
    await sub?.stop()
    await cloud?.stop()
    await removeDir(dir)
  })

  it('acknowledges devices into the queue, and makes no cloud connection while the tunnel is not in place', async () => {
    const gw = gateway!
    expect(gw.vpnMode).toBe('system')
    const unhealthy = await logs.waitFor((r) => r.event === 'tunnel_health')
    expect(unhealthy).toMatchObject({
      module: 'vpn',
      healthy: false,
      msg: 'vpn tunnel wgitgate0 unhealthy (handshake never): interface wgitgate0 does not exist; the bridge holds messages in the queue',
    })
    expect(gw.tunnel).toMatchObject({ interfaceName: 'wgitgate0', up: false, inPlace: false, healthy: false })
    // Without the interface, the kernel routes the cloud's address elsewhere: no connection is made.
    await waitUntil(
      () => {
        const link = gw.bridge.status().link
        return link.status === 'waiting' && link.cause.startsWith('the tunnel is not in place')
      },
      10_000,
      'the cloud link to wait for the tunnel',
    )

    const device = await mqtt.connectAsync({
      host: '127.0.0.1',
      port: gw.lan.listener('tcp')!.port,
      username: 'dev',
      password: 'gate-test',
      clientId: 'dev',
      reconnectPeriod: 0,
    })
    try {
      for (let i = 0; i < MESSAGES; i++) await device.publishAsync('devices/dev/t', `held-${i}`, { qos: 1 })
    } finally {
      await device.endAsync()
    }
    await waitUntil(
      () => gw.bridge.status().queue.depth === MESSAGES,
      10_000,
      'the queue to hold every message',
    )
    await sleep(1000)
    expect(sub.messages).toEqual([])
    expect(gw.bridge.status()).toMatchObject({
      link: { status: 'waiting' },
      sending: false,
      queue: { depth: MESSAGES },
    })
    expect(gw.metrics.snapshot()).toMatchObject({ vpn_tunnel_healthy: 0, uplink_queue_depth: MESSAGES })
    expect(logs.events('tunnel_health')).toHaveLength(1)
    expect(logs.records.some((r) => r.msg === 'cloud link up')).toBe(false)
    expect(gw.metrics.get('cloud_connect_attempts_total')).toBe(0)
  })
})
