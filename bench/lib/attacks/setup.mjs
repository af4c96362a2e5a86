/**
 * What the attack bench runs against, made once per run in a temp folder: a
 * PKI (CA, cloud server, the gateway's client certificate, the subscriber's),
 * four devices, and the gateway's config with the gateway's own defaults for
 * everything but the listeners, the devices and the cloud (the bench measures
 * what a user gets).
 *
 * Devices (each has a stamp index, carried in every payload it sends):
 *   good-1, good-2  password devices on the plain TCP listener: the legitimate load
 *   flooder         an authorized password device, compromised: the attacks' device
 *   psk-1           a TLS-PSK device: the "can a device still connect" probe
 */
import { randomBytes } from 'node:crypto'
import { chmod, mkdir, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CLOUD_TOPIC_PREFIX } from '../mosquitto.mjs'

const DIST = new URL('../../../dist/', import.meta.url)

export const GATEWAY_ID = 'edge-gateway'
export const LEGIT = ['good-1', 'good-2']
export const FLOODER = 'flooder'
export const PSK_DEVICE = 'psk-1'
/** Stamp index of each device (payload.mjs `publisher` field); the cloud subscriber counts per index. */
export const DEVICE_INDEX = { 'good-1': 0, 'good-2': 1, flooder: 2, 'psk-1': 3 }
export const LOCAL_PREFIX = 'devices/'
export const CLOUD_PREFIX = `${CLOUD_TOPIC_PREFIX}devices/`

async function secret(path, content) {
  await writeFile(path, content, { mode: 0o600 })
  await chmod(path, 0o600)
}

export async function makeSetup() {
  const { createCertificateAuthority, issueCertificate, writePublicFile, writeSecretFile } = await import(
    new URL('pki/index.js', DIST).href
  )
  const { hashPassword } = await import(new URL('gateway/index.js', DIST).href)
  const root = await mkdtemp(join(tmpdir(), 'edge-gw-attacks-'))
  await chmod(root, 0o700)
  const pkiDir = join(root, 'pki')
  const keysDir = join(root, 'keys')
  await mkdir(pkiDir, { mode: 0o700 })
  await mkdir(keysDir, { mode: 0o700 })

  const ca = createCertificateAuthority({ commonName: 'edge-gateway attack bench CA' })
  const pki = { caFile: join(pkiDir, 'ca.pem') }
  await writePublicFile(pki.caFile, ca.certPem)
  for (const [name, commonName, kind, altNames] of [
    ['server', 'cloud-broker', 'server', ['127.0.0.1', 'localhost']],
    ['edge', GATEWAY_ID, 'client', undefined],
    ['subscriber', 'bench-subscriber', 'client', undefined],
  ]) {
    const pair = issueCertificate(ca, { commonName, kind, ...(altNames && { altNames }) })
    pki[`${name}CertFile`] = join(pkiDir, `${name}.pem`)
    pki[`${name}KeyFile`] = join(pkiDir, `${name}.key`)
    await writePublicFile(pki[`${name}CertFile`], pair.certPem)
    await writeSecretFile(pki[`${name}KeyFile`], pair.keyPem)
  }

  const devices = {}
  for (const id of [...LEGIT, FLOODER]) {
    const password = randomBytes(12).toString('base64url')
    devices[id] = { id, index: DEVICE_INDEX[id], password, passwordHash: await hashPassword(password) }
  }
  const pskKeyHex = randomBytes(16).toString('hex')
  const pskKeyFile = join(keysDir, `${PSK_DEVICE}.psk`)
  await secret(pskKeyFile, `${pskKeyHex}\n`)
  devices[PSK_DEVICE] = {
    id: PSK_DEVICE,
    index: DEVICE_INDEX[PSK_DEVICE],
    psk: { identity: PSK_DEVICE, keyHex: pskKeyHex },
    pskKeyFile,
  }
  return { root, pki, devices }
}

/** The gateway's config: listeners, devices and the cloud; every other setting is the gateway's default. */
export function gatewayConfig({ setup, tcpPort, pskPort, cloudPort }) {
  const { devices, pki } = setup
  const password = (d) => ({
    id: d.id,
    username: d.id,
    passwordHash: d.passwordHash,
    clientIds: [d.id, `${d.id}-*`],
  })
  const psk = devices[PSK_DEVICE]
  return {
    gateway: { id: GATEWAY_ID, stateDir: 'state' },
    lan: {
      listeners: [
        { name: 'lan-plain', type: 'tcp', host: '127.0.0.1', port: tcpPort },
        { name: 'lan-psk', type: 'tls-psk', host: '127.0.0.1', port: pskPort },
      ],
    },
    devices: [
      ...[...LEGIT, FLOODER].map((id) => password(devices[id])),
      { id: psk.id, psk: { identity: psk.psk.identity, keyFile: psk.pskKeyFile } },
    ],
    cloud: {
      host: '127.0.0.1',
      port: cloudPort,
      servername: 'localhost',
      caFile: pki.caFile,
      certFile: pki.edgeCertFile,
      keyFile: pki.edgeKeyFile,
      topics: [{ local: LOCAL_PREFIX, cloud: CLOUD_PREFIX }],
    },
  }
}
