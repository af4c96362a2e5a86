import { generateKeyPairSync } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { deriveContext } from '../../crypto/context.js'
import { seal } from '../../crypto/encrypt0.js'
import { generateHpkeKeyPair, hpkeSeal } from '../../crypto/hpke.js'
import { macProtect } from '../../crypto/mac0.js'
import { sign1 } from '../../crypto/sign1.js'
import { makeToken } from '../../crypto/token.js'
import { type AeadAlg, Alg, type MacAlg } from '../../crypto/types.js'
import {
  createCertificateAuthority,
  issueCertificate,
  writePublicFile,
  writeSecretFile,
} from '../../pki/index.js'
import { ByteCountingProxy } from '../helpers/byte-counting-proxy.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { PSK_DEVICE, Stack, waitUntil } from './harness.js'

const SECRET = Buffer.from('0123456789abcdef0123456789abcdef', 'hex')
const KID = Buffer.from([0x01])
const READING = Buffer.alloc(64, 0x5a)

/**
 * Bytes on the wire for one device wake cycle (connect, one QoS 1 publish of a
 * 64-byte reading, disconnect), counted by a TCP relay between a real mqtt.js
 * client and the gateway, for each way a constrained device can protect itself.
 */
describe('bytes on the wire per wake cycle and per message', () => {
  let stack: Stack
  let dir: string
  const rows: Array<{ mode: string; up: number; down: number; total: number }> = []

  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-wire-')
    await writeSecretFile(join(dir, 'tiny.key'), SECRET.toString('hex'))
    const ca = createCertificateAuthority({ commonName: 'wire CA' })
    await writePublicFile(join(dir, 'ca.pem'), ca.certPem)
    for (const [name, kind, alt] of [
      ['server', 'server', ['127.0.0.1', 'localhost']],
      ['tls-dev', 'client', undefined],
    ] as const) {
      const pair = issueCertificate(ca, { commonName: name, kind, ...(alt && { altNames: [...alt] }) })
      await writePublicFile(join(dir, `${name}.pem`), pair.certPem)
      await writeSecretFile(join(dir, `${name}.key`), pair.keyPem)
    }
    stack = await Stack.start({
      listeners: [
        {
          name: 'mtls',
          type: 'tls',
          host: '127.0.0.1',
          port: 0,
          certFile: join(dir, 'server.pem'),
          keyFile: join(dir, 'server.key'),
          caFile: join(dir, 'ca.pem'),
        },
      ],
      devices: [
        { id: 'tiny', username: 'tiny', payloadKey: { kid: '01', secretFile: join(dir, 'tiny.key') } },
        { id: 'tls-dev', certificate: { commonName: 'tls-dev' } },
      ],
      protection: [{ topic: 'devices/tiny/sealed', mode: 'sealed' }],
    })
  })

  afterAll(async () => {
    console.log(
      `\nwake cycle: connect, one QoS 1 publish of a 64-byte reading, disconnect (bytes on the wire)\n${rows
        .map(
          (r) =>
            `  ${r.mode.padEnd(38)} up ${String(r.up).padStart(5)}  down ${String(r.down).padStart(5)}  total ${String(r.total).padStart(5)}`,
        )
        .join('\n')}`,
    )
    await stack?.stop()
    await removeDir(dir)
  })

  async function cycle(
    mode: string,
    targetPort: number,
    options: mqtt.IClientOptions,
    topic: string,
    payload: Buffer,
  ) {
    const proxy = await ByteCountingProxy.start(targetPort)
    try {
      const client = await mqtt.connectAsync({
        host: '127.0.0.1',
        port: proxy.port,
        reconnectPeriod: 0,
        keepalive: 60,
        ...options,
      })
      await client.publishAsync(topic, payload, { qos: 1 })
      await client.endAsync()
      await waitUntil(() => proxy.counts.down > 0, 2000, 'traffic counted')
      await new Promise((r) => setTimeout(r, 100))
      const { up, down } = proxy.counts
      rows.push({ mode, up, down, total: up + down })
      return up + down
    } finally {
      await proxy.close()
    }
  }

  it('token over plain TCP with a sealed reading costs a fraction of any TLS handshake', async () => {
    const ctx = deriveContext({ kid: KID, masterSecret: SECRET, aead: Alg.AES_CCM_16_64_128 })
    const sealed = seal(ctx, 'device-to-gateway', 1, READING, 'devices/tiny/sealed')
    const token = makeToken(ctx, 'tiny', Math.floor(Date.now() / 1000))
    const tokenCycle = await cycle(
      'plain TCP + one-time token + sealed',
      stack.port('tcp'),
      { clientId: 'tiny', username: 'tiny', password: token },
      'devices/tiny/sealed',
      sealed,
    )
    const psk = { identity: PSK_DEVICE.identity, psk: Buffer.from(PSK_DEVICE.keyHex, 'hex') }
    const pskOptions = (version: 'TLSv1.2' | 'TLSv1.3') =>
      ({
        protocol: 'mqtts',
        clientId: PSK_DEVICE.id,
        minVersion: version,
        maxVersion: version,
        ciphers: version === 'TLSv1.2' ? 'PSK-AES128-GCM-SHA256' : 'TLS_AES_128_GCM_SHA256',
        pskCallback: () => psk,
        checkServerIdentity: () => undefined,
      }) as mqtt.IClientOptions
    const psk12 = await cycle(
      'TLS-PSK 1.2 (PSK-AES128-GCM-SHA256)',
      stack.port('tls-psk'),
      pskOptions('TLSv1.2'),
      `devices/${PSK_DEVICE.id}/r`,
      READING,
    )
    const psk13 = await cycle(
      'TLS-PSK 1.3 (TLS_AES_128_GCM_SHA256)',
      stack.port('tls-psk'),
      pskOptions('TLSv1.3'),
      `devices/${PSK_DEVICE.id}/r`,
      READING,
    )
    const mtls13 = await cycle(
      'mutual TLS 1.3 (RSA-2048 certificates)',
      stack.port('tls'),
      {
        protocol: 'mqtts',
        clientId: 'tls-dev',
        servername: 'localhost',
        minVersion: 'TLSv1.3',
        ca: readFileSync(join(dir, 'ca.pem')),
        cert: readFileSync(join(dir, 'tls-dev.pem')),
        key: readFileSync(join(dir, 'tls-dev.key')),
      } as mqtt.IClientOptions,
      'devices/tls-dev/r',
      READING,
    )
    expect(stack.gateway.metrics.get('payload_rejected_total{reason="bad_tag"}')).toBe(0)
    expect(tokenCycle).toBeLessThan(psk12)
    expect(tokenCycle).toBeLessThan(psk13)
    expect(psk13).toBeLessThan(mtls13)
  })

  it('per-message overhead of each protection mode for a 64-byte reading', async () => {
    const topic = 'devices/tiny/r'
    const overhead: Array<[string, number]> = []
    for (const [name, aead] of [
      ['sealed AES-CCM-16-64-128', Alg.AES_CCM_16_64_128],
      ['sealed A128GCM', Alg.A128GCM],
      ['sealed A256GCM', Alg.A256GCM],
      ['sealed ChaCha20/Poly1305', Alg.CHACHA20_POLY1305],
    ] as Array<[string, AeadAlg]>) {
      const ctx = deriveContext({ kid: KID, masterSecret: SECRET, aead })
      overhead.push([name, seal(ctx, 'device-to-gateway', 65_535, READING, topic).length - READING.length])
    }
    for (const [name, mac] of [
      ['MAC HMAC 256/64', Alg.HMAC_256_64],
      ['MAC HMAC 256/256', Alg.HMAC_256_256],
    ] as Array<[string, MacAlg]>) {
      const ctx = deriveContext({ kid: KID, masterSecret: SECRET, aead: Alg.AES_CCM_16_64_128, mac })
      overhead.push([
        name,
        macProtect(ctx, 'device-to-gateway', 65_535, READING, topic).length - READING.length,
      ])
    }
    const ed = generateKeyPairSync('ed25519').privateKey
    const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
    overhead.push([
      'signed Ed25519',
      sign1(ed, Alg.EDDSA, KID, READING, Buffer.from(topic)).length - READING.length,
    ])
    overhead.push([
      'signed ES256',
      sign1(p256, Alg.ES256, KID, READING, Buffer.from(topic)).length - READING.length,
    ])
    const recipient = await generateHpkeKeyPair()
    const hpke = await hpkeSeal({ kid: KID, publicKey: recipient.publicKey }, READING, topic)
    overhead.push(['HPKE X25519/ChaCha20-Poly1305', hpke.length - READING.length])
    console.log(
      `\nper-message overhead over a 64-byte plaintext (1-byte kid, sequence 65,535)\n${overhead.map(([n, b]) => `  ${n.padEnd(32)} +${b} bytes`).join('\n')}`,
    )
    // The goal: the default sealing adds at most 20 bytes with a 1-byte kid and a sequence below 65,536.
    expect(overhead[0]![1]).toBeLessThanOrEqual(20)
  })
})
