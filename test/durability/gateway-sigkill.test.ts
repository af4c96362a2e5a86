import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { hashPassword } from '../../gateway/index.js'
import { mintLabPki } from '../../pki/index.js'
import { spawnCli } from '../cli/run-cli.js'
import { CloudMosquitto } from '../helpers/mosquitto.js'
import { MosquittoSub } from '../helpers/mosquitto-sub.js'
import { freePort } from '../helpers/ports.js'
import { onLines, signalPid, terminate } from '../helpers/processes.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'

const KILLS = 10
const WINDOW = 200

/**
 * The gateway process (`edge-gateway start`) killed with SIGKILL at random
 * moments while a device publishes QoS 1 as fast as it is acknowledged:
 * every message the gateway acknowledged must reach the real cloud broker.
 */
describe('gateway killed with SIGKILL mid-stream', () => {
  let dir: string
  let cloud: CloudMosquitto
  let sub: MosquittoSub
  let configFile: string
  let lanPort: number
  let gateway: ReturnType<typeof spawnCli> | undefined

  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-kill-')
    const pki = await mintLabPki(join(dir, 'pki'))
    cloud = await CloudMosquitto.start({
      dir,
      caFile: pki.caFile,
      certFile: pki.serverCertFile,
      keyFile: pki.serverKeyFile,
      extraConfig: ['max_queued_messages 0'],
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
    lanPort = await freePort()
    configFile = join(dir, 'gateway.yaml')
    const config = {
      gateway: { id: 'gw-kill', stateDir: join(dir, 'state') },
      log: { level: 'warn', pretty: false },
      lan: { listeners: [{ type: 'tcp', host: '127.0.0.1', port: lanPort }] },
      devices: [
        { id: 'dev', username: 'dev', passwordHash: await hashPassword('kill-test'), clientIds: ['dev-*'] },
      ],
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
    }
    await writeFile(configFile, stringify(config), { mode: 0o600 })
  })

  afterAll(async () => {
    if (gateway) await terminate(gateway)
    await sub?.stop()
    await cloud?.stop()
    await removeDir(dir)
  })

  async function startGateway(): Promise<void> {
    gateway = spawnCli(['start', '--config', configFile])
    const errors: string[] = []
    onLines(gateway.stderr, (l) => errors.push(l))
    const deadline = Date.now() + 15_000
    for (;;) {
      try {
        const probe = await mqtt.connectAsync({
          host: '127.0.0.1',
          port: lanPort,
          username: 'dev',
          password: 'kill-test',
          clientId: 'dev-probe',
          reconnectPeriod: 0,
          connectTimeout: 1000,
        })
        await probe.endAsync()
        return
      } catch {
        if (Date.now() > deadline) throw new Error(`gateway did not start: ${errors.join('\n')}`)
        await new Promise((r) => setTimeout(r, 50))
      }
    }
  }

  /** Publishes with WINDOW in flight until the connection drops; returns the payloads acknowledged. */
  async function publishUntilKilled(
    client: MqttClient,
    prefix: string,
    acknowledged: Set<string>,
  ): Promise<number> {
    let next = 0
    let sent = 0
    await new Promise<void>((resolve) => {
      let inFlight = 0
      let closed = false
      const pump = () => {
        while (!closed && inFlight < WINDOW && next < 1_000_000) {
          const payload = `${prefix}-${next++}`
          inFlight++
          sent++
          client.publish('devices/dev/seq', payload, { qos: 1 }, (err) => {
            inFlight--
            if (!err) acknowledged.add(payload)
            if (!closed) pump()
          })
        }
      }
      client.once('close', () => {
        closed = true
        resolve()
      })
      pump()
    })
    return sent
  }

  it(`zero acknowledged messages lost over ${KILLS} kills`, async () => {
    const acknowledged = new Set<string>()
    let sent = 0
    for (let round = 0; round < KILLS; round++) {
      await startGateway()
      const client = await mqtt.connectAsync({
        host: '127.0.0.1',
        port: lanPort,
        username: 'dev',
        password: 'kill-test',
        clientId: `dev-${round}`,
        reconnectPeriod: 0,
      })
      const killAfter = 300 + Math.floor(Math.random() * 1200)
      const kill = setTimeout(() => signalPid(gateway?.pid, 'SIGKILL'), killAfter)
      sent += await publishUntilKilled(client, `r${round}`, acknowledged)
      clearTimeout(kill)
      client.end(true)
      await new Promise<void>((resolve) =>
        gateway?.exitCode !== null ? resolve() : gateway.once('exit', () => resolve()),
      )
    }
    await startGateway()
    const deadline = Date.now() + 60_000
    const received = () => new Set(sub.messages.map((m) => m.payload))
    while ([...acknowledged].some((p) => !received().has(p)) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200))
    }
    const got = received()
    const lost = [...acknowledged].filter((p) => !got.has(p))
    const duplicates = sub.messages.length - got.size
    console.log(
      `\nSIGKILL x${KILLS}: sent ${sent}, acknowledged ${acknowledged.size}, received ${got.size} distinct, duplicates ${duplicates}, acknowledged lost ${lost.length}`,
    )
    expect(acknowledged.size).toBeGreaterThan(KILLS * 100)
    expect(lost).toEqual([])
  }, 240_000)
})
