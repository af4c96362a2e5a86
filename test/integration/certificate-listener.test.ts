import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type CertificateAuthority,
  createCertificateAuthority,
  issueCertificate,
  writePublicFile,
  writeSecretFile,
} from '../../pki/index.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { publishOutcome } from './clients.js'
import { PASSWORD_DEVICE, Stack } from './harness.js'

describe('TLS listener with client certificates', () => {
  let stack: Stack
  let dir: string
  let deviceCa: CertificateAuthority
  const files = (name: string) => ({ cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) })

  async function issue(
    ca: CertificateAuthority,
    name: string,
    kind: 'server' | 'client',
    altNames?: string[],
  ) {
    const pair = issueCertificate(ca, { commonName: name, kind, ...(altNames && { altNames }) })
    await writePublicFile(files(name).cert, pair.certPem)
    await writeSecretFile(files(name).key, pair.keyPem)
  }

  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-certs-')
    deviceCa = createCertificateAuthority({ commonName: 'device CA' })
    await writePublicFile(join(dir, 'device-ca.pem'), deviceCa.certPem)
    await issue(deviceCa, 'lan-server', 'server', ['127.0.0.1', 'localhost'])
    await issue(deviceCa, 'cert-dev', 'client')
    await issue(deviceCa, 'stranger', 'client')
    await issue(createCertificateAuthority({ commonName: 'rogue CA' }), 'rogue', 'client')
    stack = await Stack.start({
      listeners: [
        {
          name: 'certs',
          type: 'tls',
          host: '127.0.0.1',
          port: 0,
          certFile: files('lan-server').cert,
          keyFile: files('lan-server').key,
          caFile: join(dir, 'device-ca.pem'),
        },
      ],
      devices: [{ id: 'cert-dev', certificate: { commonName: 'cert-dev' } }],
    })
  })

  afterAll(async () => {
    await stack?.stop()
    await removeDir(dir)
  })

  /** mTLS options for a device whose certificate and key are named `name`. */
  function tlsOptions(name: string, extra: mqtt.IClientOptions = {}): mqtt.IClientOptions {
    return {
      protocol: 'mqtts',
      host: '127.0.0.1',
      port: stack.port('tls'),
      servername: 'localhost',
      ca: readFileSync(join(dir, 'device-ca.pem')),
      cert: readFileSync(files(name).cert),
      key: readFileSync(files(name).key),
      reconnectPeriod: 0,
      connectTimeout: 5000,
      clientId: name,
      ...extra,
    }
  }

  function connect(name: string, extra: mqtt.IClientOptions = {}) {
    return mqtt.connectAsync(tlsOptions(name, extra))
  }

  /** 0 when accepted, the CONNACK code when refused, 'closed' when the connection ended without a CONNACK. */
  function connackOf(name: string, extra: mqtt.IClientOptions = {}): Promise<number | string> {
    return new Promise((resolve, reject) => {
      const client = mqtt.connect(tlsOptions(name, extra))
      const timer = setTimeout(() => reject(new Error('no CONNACK and no close within 10 s')), 10_000)
      const finish = (result: number | string) => {
        clearTimeout(timer)
        client.end(true)
        resolve(result)
      }
      client.once('connect', () => finish(0))
      client.once('error', (err) => {
        const code = (err as { code?: unknown }).code
        if (typeof code === 'number') finish(code)
      })
      client.once('close', () => finish('closed'))
    })
  }

  it('a device certificate names the device: it connects and publishes under its prefix', async () => {
    const client = await connect('cert-dev')
    expect(await publishOutcome(client, 'devices/cert-dev/reading', '7')).toBe('acked')
    await client.endAsync()
  })

  it('a valid certificate that names no device gets CONNACK 5', async () => {
    expect(await connackOf('stranger')).toBe(5)
    await stack.logs.waitFor((r) => r.event === 'auth_unknown_certificate' && r.certificate === 'stranger')
  })

  it("the certificate of one device with another device's username and password gets CONNACK 5", async () => {
    expect(
      await connackOf('cert-dev', { username: PASSWORD_DEVICE.username, password: PASSWORD_DEVICE.password }),
    ).toBe(5)
    const event = await stack.logs.waitFor(
      (r) => r.event === 'auth_identity_mismatch' && r.certificate === 'cert-dev',
    )
    expect(event).toMatchObject({ device: 'cert-dev', username: PASSWORD_DEVICE.username })
  })

  it('a certificate from another CA fails the TLS handshake, and it is logged', async () => {
    expect(await connackOf('rogue')).toBe('closed')
    await stack.logs.waitFor((r) => r.event === 'tls_handshake_failed' && r.listener === 'certs')
  })
})
