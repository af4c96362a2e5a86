import { type ChildProcess, execFile } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import {
  type CertificateAuthority,
  createCertificateAuthority,
  issueCertificate,
  writePublicFile,
  writeSecretFile,
} from '../../pki/index.js'
import { freePort } from '../helpers/ports.js'
import { signalPid, terminate } from '../helpers/processes.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { waitUntil } from '../integration/harness.js'
import { absentCloud, startGatewayCli } from './run-cli.js'

/**
 * Issue 15, "LAN listener certificate swap": the certificate of a `tls` listener is replaced on
 * SIGHUP or when its files change, as `edge-gateway start` runs it: a device connected with TLS
 * stays connected and keeps publishing, new connections get the new certificate (read with
 * `openssl s_client`), and a set of files that does not work is refused, the old certificate kept.
 */
describe('edge-gateway start: the tls listener certificate swapped on reload, no device dropped', () => {
  let dir: string
  let ca: CertificateAuthority
  let configFile: string
  let port: number
  let child: ChildProcess
  let logs: Array<Record<string, unknown>> = []
  const file = (name: string) => join(dir, name)

  /** A server certificate for the listener, with its own new key; returns its serial (hex, upper case). */
  async function issueServer(certFile = 'server.pem', keyFile = 'server.key'): Promise<string> {
    const pair = issueCertificate(ca, {
      commonName: 'lan-server',
      kind: 'server',
      altNames: ['127.0.0.1', 'localhost'],
    })
    await writePublicFile(file(certFile), pair.certPem)
    await writeSecretFile(file(keyFile), pair.keyPem)
    return new X509Certificate(pair.certPem).serialNumber
  }

  /** The serial of the certificate the listener serves to a new connection, as `openssl s_client` reads it. */
  function servedSerial(): Promise<string> {
    const args = [
      's_client',
      ...['-connect', `127.0.0.1:${port}`, '-servername', 'localhost'],
      ...['-CAfile', file('ca.pem'), '-cert', file('dev.pem'), '-key', file('dev.key')],
      '-verify_return_error',
    ]
    return new Promise((resolve, reject) => {
      const proc = execFile('openssl', args, { timeout: 10_000 }, (err, stdout, stderr) => {
        const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(stdout)?.[0]
        if (pem) resolve(new X509Certificate(pem).serialNumber)
        else
          reject(
            new Error(`openssl s_client printed no certificate (${err?.message ?? 'exit 0'}):\n${stderr}`),
          )
      })
      proc.stdin?.end()
    })
  }

  function connectDevice(): Promise<MqttClient> {
    return mqtt.connectAsync({
      protocol: 'mqtts',
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: readFileSync(file('ca.pem')),
      cert: readFileSync(file('dev.pem')),
      key: readFileSync(file('dev.key')),
      clientId: 'dev',
      reconnectPeriod: 0,
      connectTimeout: 5_000,
    })
  }

  const reloads = () => logs.filter((l) => String(l.msg).startsWith('reloaded devices and policies: '))
  const refusals = () => logs.filter((l) => l.event === 'listener_certificate_refused')
  const served = (l: Record<string, unknown>) =>
    (l.certificates as Array<{ serial: string }> | undefined)?.[0]?.serial

  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-lan-cert-')
    ca = createCertificateAuthority({ commonName: 'device CA' })
    await writePublicFile(file('ca.pem'), ca.certPem)
    const dev = issueCertificate(ca, { commonName: 'dev', kind: 'client' })
    await writePublicFile(file('dev.pem'), dev.certPem)
    await writeSecretFile(file('dev.key'), dev.keyPem)
    await issueServer()
    port = await freePort()
    const config = {
      gateway: { id: 'gw-lan-cert' },
      log: { level: 'info', pretty: false },
      lan: {
        listeners: [
          {
            name: 'lan-tls',
            type: 'tls',
            host: '127.0.0.1',
            port,
            certFile: file('server.pem'),
            keyFile: file('server.key'),
            caFile: file('ca.pem'),
          },
        ],
      },
      devices: [{ id: 'dev', certificate: { commonName: 'dev' } }],
      policies: { rules: [{ name: 'own', who: 'everyone', topic: 'devices/%d/#', action: 'both' }] },
      // Nothing listens there: the LAN side runs and reloads without the cloud.
      cloud: await absentCloud(dir),
    }
    configFile = file('gateway.yaml')
    await writeFile(configFile, stringify(config), { mode: 0o600 })
    ;({ child, logs } = await startGatewayCli(configFile))
  }, 30_000)

  afterAll(async () => {
    if (child) await terminate(child)
    await removeDir(dir)
  })

  it('SIGHUP: new connections get the new certificate; the connected device stays connected and publishes on', async () => {
    const before = await servedSerial()
    const device = await connectDevice()
    let closed = false
    device.on('close', () => {
      closed = true
    })
    let pubacks = 0
    device.on('packetreceive', (packet) => {
      if (packet.cmd === 'puback') pubacks++
    })
    await device.publishAsync('devices/dev/data', 'before the swap', { qos: 1 })
    expect(pubacks).toBe(1)

    const next = await issueServer()
    expect(next).not.toBe(before)
    const count = reloads().length
    signalPid(child.pid, 'SIGHUP')
    await waitUntil(
      () =>
        reloads()
          .slice(count)
          .some((l) => served(l) === next),
      10_000,
      'reload with the new serial',
    )
    expect(reloads().at(-1)).toMatchObject({
      certificates: [{ listener: 'lan-tls', changed: true, serial: next }],
    })
    expect(await servedSerial()).toBe(next)

    // The connection made before the swap is still the same one, and works.
    await device.publishAsync('devices/dev/data', 'after the swap', { qos: 1 })
    expect(pubacks).toBe(2)
    expect(closed).toBe(false)
    expect(device.connected).toBe(true)
    // A device connecting now verifies the new certificate against the same CA.
    const fresh = await connectDevice()
    expect((fresh.stream as import('node:tls').TLSSocket).getPeerCertificate().serialNumber).toBe(next)
    await fresh.endAsync()
    await device.endAsync()
  }, 30_000)

  it('a certificate whose key is not the key file is refused with an error line; the listener keeps the old one', async () => {
    const current = await servedSerial()
    // A new certificate beside the key of another: OpenSSL refuses the pair.
    await issueServer('server.pem', 'unused.key')
    const count = refusals().length
    signalPid(child.pid, 'SIGHUP')
    await waitUntil(() => refusals().length > count, 10_000, 'the refusal')
    const refused = refusals().at(-1)!
    expect(refused).toMatchObject({ level: 50, listener: 'lan-tls' })
    expect(String(refused.msg)).toMatch(
      /do not make a working TLS certificate: .*the listener keeps serving its previous certificate/,
    )
    expect(await servedSerial()).toBe(current)
    const device = await connectDevice()
    expect(device.connected).toBe(true)
    await device.endAsync()
  }, 30_000)

  it('without a signal: replacing the files is seen by the file watcher and applied', async () => {
    const next = await issueServer()
    await waitUntil(() => reloads().some((l) => served(l) === next), 10_000, 'reload on file change')
    expect(await servedSerial()).toBe(next)
  }, 30_000)
})
