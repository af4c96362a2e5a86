import type { ChildProcess } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { deriveContext } from '../../crypto/context.js'
import { makeToken } from '../../crypto/token.js'
import { Alg } from '../../crypto/types.js'
import { mintLabPki, writeSecretFile } from '../../pki/index.js'
import { spawnCli } from '../cli/run-cli.js'
import { CloudMosquitto } from '../helpers/mosquitto.js'
import { freePort } from '../helpers/ports.js'
import { exitOf, onLines, signalPid, terminate } from '../helpers/processes.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { connackCode } from './clients.js'

const SECRET = Buffer.from('00112233445566778899aabbccddeeff', 'hex')
const ctx = deriveContext({
  masterSecret: SECRET,
  kid: Buffer.from('31', 'hex'),
  aead: Alg.AES_CCM_16_64_128,
})
const token = () => makeToken(ctx, 'tiny', Math.floor(Date.now() / 1000))

/**
 * One-time CONNECT tokens stay one-time across a restart of the gateway
 * process: a clean stop (SIGTERM) and a crash (SIGKILL right after the
 * CONNACK). Runs `edge-gateway start` from dist, as an operator would.
 */
describe('a CONNECT token replayed after a gateway restart', () => {
  let dir: string
  let cloud: CloudMosquitto
  let configFile: string
  let lanPort: number
  let gateway: ChildProcess | undefined
  let output: string[] = []

  async function startGateway(): Promise<void> {
    output = []
    const child = spawnCli(['start', '--config', configFile])
    gateway = child
    let started = false
    onLines(child.stderr, (line) => output.push(line))
    onLines(child.stdout, (line) => {
      output.push(line)
      if (line.includes('"msg":"edge gateway started"')) started = true
    })
    const deadline = Date.now() + 30_000
    while (!started) {
      if (child.exitCode !== null || Date.now() > deadline)
        throw new Error(`gateway did not start:\n${output.slice(-20).join('\n')}`)
      await new Promise((r) => setTimeout(r, 20))
    }
  }

  const connect = (password: Buffer) => connackCode(lanPort, { clientId: 'tiny', username: 'tiny', password })

  /** The auth_bad_token events the running gateway logged, as parsed records. */
  const badTokenEvents = () =>
    output
      .filter((l) => l.includes('"event":"auth_bad_token"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)

  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-token-restart-')
    const pki = await mintLabPki(join(dir, 'pki'))
    cloud = await CloudMosquitto.start({
      dir,
      caFile: pki.caFile,
      certFile: pki.serverCertFile,
      keyFile: pki.serverKeyFile,
    })
    lanPort = await freePort()
    await writeSecretFile(join(dir, 'tiny.secret'), `${SECRET.toString('hex')}\n`)
    configFile = join(dir, 'gateway.yaml')
    const config = {
      gateway: { id: 'gw-token', stateDir: join(dir, 'state') },
      log: { level: 'info', pretty: false },
      lan: { listeners: [{ type: 'tcp', host: '127.0.0.1', port: lanPort }] },
      devices: [{ id: 'tiny', payloadKey: { kid: '31', secretFile: join(dir, 'tiny.secret') } }],
      cloud: {
        host: '127.0.0.1',
        port: cloud.port,
        servername: 'localhost',
        caFile: pki.caFile,
        certFile: pki.clientCertFile,
        keyFile: pki.clientKeyFile,
        topics: [{ local: 'devices/', cloud: 'gw/' }],
      },
    }
    await writeFile(configFile, stringify(config), { mode: 0o600 })
    await startGateway()
  })

  afterAll(async () => {
    if (gateway) await terminate(gateway)
    await cloud?.stop()
    await removeDir(dir)
  })

  it('is refused after a clean restart', async () => {
    const used = token()
    expect(await connect(used)).toBe(0)
    expect(await connect(used)).toBe(4)
    await terminate(gateway!)
    await startGateway()
    expect(await connect(used)).toBe(4)
    expect(badTokenEvents()).toEqual([
      expect.objectContaining({ device: 'tiny', msg: 'CONNECT refused: one-time token refused (replayed)' }),
    ])
    expect(await connect(token())).toBe(0)
  })

  it('is refused after a kill -9 right after its CONNACK', async () => {
    const used = token()
    expect(await connect(used)).toBe(0)
    const killed = exitOf(gateway!)
    signalPid(gateway!.pid, 'SIGKILL')
    expect((await killed).signal).toBe('SIGKILL')
    await startGateway()
    expect(await connect(used)).toBe(4)
    expect(badTokenEvents()).toEqual([
      expect.objectContaining({ device: 'tiny', msg: 'CONNECT refused: one-time token refused (replayed)' }),
    ])
    expect(await connect(token())).toBe(0)
  })
})
