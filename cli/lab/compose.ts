import { randomBytes } from 'node:crypto'
import { access, mkdir, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { stringify } from 'yaml'
import type { ConfigInput } from '../../config/index.js'
import { generateHpkeKeyPair } from '../../crypto/hpke.js'
import { hashPassword } from '../../gateway/index.js'
import { mintLabPki, writePublicFile, writeSecretFile } from '../../pki/index.js'

/**
 * The container lab's addresses: the tunnel's two ends, and the cloud's name. The lab's networks
 * have no fixed addresses (docker-compose.yml): in each container, deploy/lab/entry.sh maps `cloud`
 * in /etc/hosts to the cloud's address on the network they share, so `cloud` is the gateway's
 * WireGuard peer on `wan`, and the broker the consumer reads on `cloudnet` (where, in the cloud
 * container, the broker listens as `cloud`).
 */
export const COMPOSE_LAB = {
  gatewayId: 'lab',
  tunnel: { gateway: '10.78.0.1', cloud: '10.78.0.2' },
  cloud: 'cloud',
  wireguardPort: 51820,
  devices: { psk: 'lab-psk', password: 'lab-pass', sealed: 'lab-sealed', hpke: 'lab-hpke' },
} as const

/** A WireGuard key pair: raw X25519 keys (HPKE's KEM uses the same curve), base64 as `wg genkey` prints them. */
async function wireguardKeys(): Promise<{ privateKey: string; publicKey: string }> {
  const pair = await generateHpkeKeyPair()
  return { privateKey: pair.privateKey.toString('base64'), publicKey: pair.publicKey.toString('base64') }
}

/**
 * `edge-gateway lab-setup <dir>`: everything the container lab needs, made once into `dir` (the
 * lab's named volume): the lab PKI (node-forge), the devices' credentials in four LAN modes, the
 * HPKE recipient key of the consumer, both WireGuard key pairs, and the configs of the gateway,
 * the cloud broker and the consumer. Secrets are 0600. A second run finds `dir/.ready` and changes
 * nothing, so `docker compose up` again keeps the lab's keys.
 */
export async function prepareComposeLab(dir: string): Promise<'made' | 'there'> {
  const root = resolve(dir)
  const ready = join(root, '.ready')
  try {
    await access(ready)
    return 'there'
  } catch {
    // Not made yet.
  }
  const L = COMPOSE_LAB
  await mkdir(root, { recursive: true, mode: 0o700 })
  const pki = await mintLabPki(join(root, 'pki'), {
    clientCommonName: L.gatewayId,
    serverNames: [L.tunnel.cloud, L.cloud, 'localhost', '127.0.0.1'],
  })
  const keys = join(root, 'keys')
  const pskFile = join(keys, `${L.devices.psk}.psk`)
  const pskKey = randomBytes(16).toString('hex')
  await writeSecretFile(pskFile, `${pskKey}\n`)
  const password = randomBytes(12).toString('base64url')
  await writeSecretFile(join(keys, `${L.devices.password}.password`), `${password}\n`)
  for (const id of [L.devices.sealed, L.devices.hpke]) {
    await writeSecretFile(join(keys, `${id}.secret`), `${randomBytes(32).toString('hex')}\n`)
  }
  const recipient = await generateHpkeKeyPair()
  await writeSecretFile(join(keys, 'consumer-hpke.key'), `${recipient.privateKey.toString('hex')}\n`)
  await writePublicFile(join(keys, 'consumer-hpke.pub'), `${recipient.publicKey.toString('hex')}\n`)
  const gatewayWg = await wireguardKeys()
  const cloudWg = await wireguardKeys()
  await writeSecretFile(join(keys, 'gateway-wg.key'), `${gatewayWg.privateKey}\n`)
  await writeSecretFile(join(keys, 'cloud-wg.key'), `${cloudWg.privateKey}\n`)
  await writePublicFile(join(keys, 'gateway-wg.pub'), `${gatewayWg.publicKey}\n`)

  const gateway: ConfigInput = {
    gateway: { id: L.gatewayId, stateDir: '/var/lib/edge-gateway/state' },
    log: { level: 'info', pretty: false },
    lan: {
      listeners: [
        { name: 'lan-plain', type: 'tcp', host: '0.0.0.0', port: 1883 },
        { name: 'lan-psk', type: 'tls-psk', host: '0.0.0.0', port: 8883 },
      ],
      protection: [{ topic: `devices/${L.devices.sealed}/#`, mode: 'sealed' }],
    },
    devices: [
      {
        id: L.devices.psk,
        psk: { identity: L.devices.psk, keyFile: pskFile },
        clientIds: [`${L.devices.psk}*`],
      },
      {
        id: L.devices.password,
        username: L.devices.password,
        passwordHash: await hashPassword(password),
        clientIds: [`${L.devices.password}*`],
      },
      {
        id: L.devices.sealed,
        payloadKey: { kid: '5e', secretFile: join(keys, `${L.devices.sealed}.secret`) },
      },
      { id: L.devices.hpke, payloadKey: { kid: '4b', secretFile: join(keys, `${L.devices.hpke}.secret`) } },
    ],
    cloud: {
      host: L.tunnel.cloud,
      port: 8883,
      caFile: pki.caFile,
      certFile: pki.clientCertFile,
      keyFile: pki.clientKeyFile,
      reconnect: { initialDelayMs: 200, maxDelayMs: 2000 },
      topics: [
        // The HPKE device seals for the consumer itself: its payload goes up as it was sent.
        {
          local: `devices/${L.devices.hpke}/`,
          cloud: `sites/${L.gatewayId}/e2e/${L.devices.hpke}/`,
          mode: 'end-to-end',
        },
        // The sealed device's readings, opened by the gateway, go up HPKE-sealed to the consumer.
        {
          local: `devices/${L.devices.sealed}/`,
          cloud: `sites/${L.gatewayId}/devices/${L.devices.sealed}/`,
          sealFor: 'consumer',
        },
        { local: 'devices/', cloud: `sites/${L.gatewayId}/devices/` },
      ],
      recipients: [{ name: 'consumer', publicKeyFile: join(keys, 'consumer-hpke.pub') }],
    },
    vpn: {
      interfaceName: 'wg0',
      implementation: 'wireguard-go',
      privateKeyFile: join(keys, 'gateway-wg.key'),
      addresses: [`${L.tunnel.gateway}/30`],
      peer: {
        publicKey: cloudWg.publicKey,
        endpoint: `${L.cloud}:${L.wireguardPort}`,
        allowedIps: [`${L.tunnel.cloud}/32`],
        persistentKeepalive: 5,
      },
      healthyHandshakeSeconds: 30,
      pollMs: 1000,
    },
    observability: { listen: '127.0.0.1:9464' },
  }
  await writeSecretFile(
    join(root, 'gateway.yaml'),
    `# Written by \`edge-gateway lab-setup\` for the container lab (docker-compose.yml).\n${stringify(gateway)}`,
  )

  // The cloud broker: mutual TLS on its tunnel address only, and for the consumer on its own network.
  const tls = [
    `cafile ${pki.caFile}`,
    `certfile ${pki.serverCertFile}`,
    `keyfile ${pki.serverKeyFile}`,
    'require_certificate true',
    'use_identity_as_username true',
  ]
  await writePublicFile(
    join(root, 'mosquitto.conf'),
    [
      '# The lab cloud broker (docker-compose.yml, service cloud).',
      'persistence false',
      'log_dest stdout',
      `listener 8883 ${L.tunnel.cloud}`,
      ...tls,
      `listener 8883 ${L.cloud}`,
      ...tls,
      '',
    ].join('\n'),
  )
  await writePublicFile(
    join(root, 'cloud-wg.env'),
    [
      `WG_ADDRESS=${L.tunnel.cloud}/30`,
      `WG_PORT=${L.wireguardPort}`,
      `WG_PEER=${gatewayWg.publicKey}`,
      `WG_PEER_ALLOWED=${L.tunnel.gateway}/32`,
      '',
    ].join('\n'),
  )
  await writeSecretFile(
    join(root, 'cloud.yaml'),
    `# The lab consumer (docker-compose.yml, service consumer).\n${stringify({
      broker: {
        host: L.cloud,
        port: 8883,
        caFile: pki.caFile,
        certFile: pki.clientCertFile,
        keyFile: pki.clientKeyFile,
        clientId: 'lab-consumer',
      },
      subscribe: [`sites/${L.gatewayId}/#`],
      recipients: [{ kid: 'consumer', privateKeyFile: join(keys, 'consumer-hpke.key') }],
    })}`,
  )
  await writeFile(ready, `${new Date().toISOString()}\n`, { mode: 0o600 })
  return 'made'
}
