import { execFileSync } from 'node:child_process'
import { chmod, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { hashPassword } from '../../gateway/index.js'
import { createCertificateAuthority, mintLabPki } from '../../pki/index.js'
import { CloudMosquitto } from '../helpers/mosquitto.js'
import { freePort } from '../helpers/ports.js'
import { onLines, terminate } from '../helpers/processes.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { runCli, spawnCli } from './run-cli.js'

const GATEWAY = 'gw-tools'

/**
 * The cloud-side tools a cloud developer copies, run as a user runs them
 * (dist/cli), against a real mosquitto with require_certificate and a real
 * `edge-gateway start`: keygen, consume (verify, open, dedupe), command
 * (sign and send), and `status` of the running gateway.
 */
describe('edge-gateway cloud keygen | consume | command, and status', () => {
  let dir: string
  let cloud: CloudMosquitto
  let gateway: ReturnType<typeof spawnCli> | undefined
  let lanPort: number
  let configFile: string
  let toolsFile: string
  let device: MqttClient
  const received: Array<{ topic: string; payload: string }> = []

  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-tools-')
    const pki = await mintLabPki(join(dir, 'pki'), { clientCommonName: GATEWAY })
    cloud = await CloudMosquitto.start({
      dir,
      caFile: pki.caFile,
      certFile: pki.serverCertFile,
      keyFile: pki.serverKeyFile,
    })
    const ops = await runCli(['cloud', 'keygen', '--operator', join(dir, 'ops')])
    expect(ops.code, ops.stderr).toBe(0)
    expect(ops.stdout).toMatch(/kid [0-9a-f]{16}/)
    const rcpt = await runCli(['cloud', 'keygen', '--recipient', join(dir, 'analytics')])
    expect(rcpt.code, rcpt.stderr).toBe(0)
    lanPort = await freePort()
    configFile = join(dir, 'gateway.yaml')
    await writeFile(
      configFile,
      stringify({
        gateway: { id: GATEWAY, stateDir: join(dir, 'state') },
        log: { level: 'info', pretty: false },
        lan: { listeners: [{ type: 'tcp', host: '127.0.0.1', port: lanPort }] },
        devices: [
          { id: 'dev', username: 'dev', passwordHash: await hashPassword('tools-test'), clientIds: ['dev*'] },
        ],
        cloud: {
          host: '127.0.0.1',
          port: cloud.port,
          servername: 'localhost',
          caFile: pki.caFile,
          certFile: pki.clientCertFile,
          keyFile: pki.clientKeyFile,
          reconnect: { initialDelayMs: 100, maxDelayMs: 1000 },
          topics: [
            { local: 'devices/dev/private/', cloud: `sites/${GATEWAY}/private/`, sealFor: 'analytics' },
            { local: 'devices/', cloud: `sites/${GATEWAY}/` },
          ],
          recipients: [{ name: 'analytics', publicKeyFile: join(dir, 'analytics.pub') }],
          downlink: {
            topics: [{ cloud: `commands/${GATEWAY}/`, local: 'devices/' }],
            operators: [{ name: 'ops', publicKeyFile: join(dir, 'ops.pub') }],
          },
        },
      }),
      { mode: 0o600 },
    )
    await writeFile(
      join(dir, 'trust-bundle.pem'),
      createCertificateAuthority({ commonName: 'another CA' }).certPem + (await readFile(pki.caFile, 'utf8')),
    )
    toolsFile = join(dir, 'cloud.yaml')
    await writeFile(
      toolsFile,
      stringify({
        broker: {
          // An IP address and no servername: the broker's certificate is checked against the IP.
          host: '127.0.0.1',
          port: cloud.port,
          caFile: 'pki/ca.pem',
          certFile: 'pki/client.pem',
          keyFile: 'pki/client.key',
        },
        // A bundle with the gateways' CA second: a key binding chains to any CA of it.
        trust: { caFile: 'trust-bundle.pem' },
        subscribe: ['sites/#'],
        recipients: [{ kid: 'analytics', privateKeyFile: 'analytics.key' }],
        operator: { keyFile: 'ops.key' },
      }),
    )
    gateway = spawnCli(['start', '--config', configFile])
    const errors: string[] = []
    onLines(gateway.stderr, (l) => errors.push(l))
    const deadline = Date.now() + 15_000
    for (;;) {
      try {
        device = await mqtt.connectAsync({
          host: '127.0.0.1',
          port: lanPort,
          username: 'dev',
          password: 'tools-test',
          clientId: 'dev-1',
          reconnectPeriod: 0,
          connectTimeout: 1000,
        })
        break
      } catch {
        if (Date.now() > deadline) throw new Error(`gateway did not start: ${errors.join('\n')}`)
        await new Promise((r) => setTimeout(r, 50))
      }
    }
    device.on('message', (topic, payload) => received.push({ topic, payload: payload.toString() }))
    await device.subscribeAsync('devices/dev/cmd/#', { qos: 1 })
  })

  afterAll(async () => {
    await device?.endAsync(true).catch(() => undefined)
    if (gateway) await terminate(gateway)
    await cloud?.stop()
    await removeDir(dir)
  })

  it('consume verifies and prints every message as a JSON line, opening the sealed ones', async () => {
    const child = spawnCli(['cloud', 'consume', '--config', toolsFile, '--count', '6', '--timeout', '60'])
    let stdout = ''
    let stderr = ''
    child.stdout?.setEncoding('utf8').on('data', (c: string) => {
      stdout += c
    })
    onLines(child.stderr, (l) => {
      stderr += `${l}\n`
    })
    const exited = new Promise<number | null>((resolve) => child.once('close', resolve))
    // Publish once the consumer says it is subscribed; the key binding is retained, data is not.
    const deadline = Date.now() + 20_000
    while (!stderr.includes('consuming ') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50))
    expect(stderr).toContain('consuming sites/#')
    for (let i = 0; i < 3; i++) await device.publishAsync('devices/dev/temp', `t=${20 + i}`, { qos: 1 })
    for (let i = 0; i < 3; i++) await device.publishAsync('devices/dev/private/door', `code ${i}`, { qos: 1 })
    const result = { code: await exited, stdout, stderr }
    const lines = result.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    const messages = lines.filter((l) => l.kind === 'message')
    expect(
      messages.map((m) => [m.topic, m.payload, m.protection]),
      result.stdout + result.stderr,
    ).toEqual([
      ['devices/dev/temp', 't=20', 'plain'],
      ['devices/dev/temp', 't=21', 'plain'],
      ['devices/dev/temp', 't=22', 'plain'],
      ['devices/dev/private/door', 'code 0', 'hpke'],
      ['devices/dev/private/door', 'code 1', 'hpke'],
      ['devices/dev/private/door', 'code 2', 'hpke'],
    ])
    for (const m of messages) expect(m).toMatchObject({ gateway: GATEWAY, device: 'dev' })
    expect(lines.filter((l) => 'rejected' in l)).toEqual([])
    expect(result.stderr).toMatch(/consumed 6 message\(s\), 0 duplicate\(s\) dropped, 0 rejected/)
    // No IP address sent as SNI (Node's DEP0123 warning).
    expect(result.stderr).not.toContain('DEP0123')
  })

  it('command signs and sends; the gateway verifies and the device receives it', async () => {
    const sent = await runCli([
      'cloud',
      'command',
      '--config',
      toolsFile,
      '--gateway',
      GATEWAY,
      '--device',
      'dev',
      '--topic',
      `commands/${GATEWAY}/dev/cmd/led`,
      '--payload',
      'blink 3',
    ])
    expect(sent.code, sent.stderr).toBe(0)
    const deadline = Date.now() + 10_000
    while (received.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    expect(received).toEqual([{ topic: 'devices/dev/cmd/led', payload: 'blink 3' }])
  })

  it('rotate checks the CA before asking the gateway for anything: an EC CA is refused at once, naming why', async () => {
    const ecKey = join(dir, 'ec-ca.key')
    const ecCert = join(dir, 'ec-ca.pem')
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        ecKey,
        '-out',
        ecCert,
        '-days',
        '30',
        '-subj',
        '/CN=EC CA',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
      ],
      { stdio: 'ignore' },
    )
    await chmod(ecKey, 0o600)
    const result = await runCli([
      'cloud',
      'rotate',
      '-c',
      toolsFile,
      '--gateway',
      GATEWAY,
      '--ca-cert',
      ecCert,
      '--ca-key',
      ecKey,
      '--timeout',
      '5',
    ])
    expect(result.code).toBe(1)
    expect(result.stderr).toContain(
      'Expected the CA certificate to be a PEM "CERTIFICATE" with an RSA key, got a "CERTIFICATE" block whose key is EC (an RSA CA is needed) [PKI_ERR_BAD_PEM]',
    )
    // Nothing was asked: no CSR request went out, so the gateway made no pending key.
    expect(result.stdout + result.stderr).not.toContain('asking')
  })

  it('status shows the running gateway: link, queue, drain, certificate', async () => {
    // The status file is written every 2 s.
    await new Promise((r) => setTimeout(r, 2500))
    const text = await runCli(['status', '--config', configFile])
    expect(text.code, text.stderr).toBe(0)
    expect(text.stdout).toMatch(new RegExp(`^gateway\\s+${GATEWAY} \\(pid \\d+\\) running$`, 'm'))
    expect(text.stdout).toMatch(/^cloud link\s+connected since /m)
    expect(text.stdout).toMatch(/^queue\s+0 message\(s\)/m)
    expect(text.stdout).toMatch(/^certificate\s+.*expires .* \(\d+ days\)$/m)
    const json = await runCli(['status', '--config', configFile, '--json'])
    const status = JSON.parse(json.stdout) as {
      running: boolean
      bridge: { accepted: number; delivered: number }
    }
    expect(status.running).toBe(true)
    expect(status.bridge.accepted).toBe(6)
    expect(status.bridge.delivered).toBe(6)
  })

  it('status of a stopped gateway says so and exits 3', async () => {
    if (gateway) await terminate(gateway)
    gateway = undefined
    const text = await runCli(['status', '--config', configFile])
    expect(text.code).toBe(3)
    expect(text.stdout).toMatch(/NOT RUNNING .* state stopped/)
  })
})
