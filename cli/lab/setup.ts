import { randomBytes } from 'node:crypto'
import { mkdir } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { stringify } from 'yaml'
import type { ConfigInput } from '../../config/index.js'
import { hashPassword } from '../../gateway/index.js'
import { type LabPki, mintLabPki, writeSecretFile } from '../../pki/index.js'

export const LAB_GATEWAY_ID = 'lab'
export const LAB_PSK_DEVICE = 'lab-psk'
export const LAB_PASSWORD_DEVICE = 'lab-pass'

export interface LabSetup {
  dir: string
  configFile: string
  pki: LabPki
  ports: { plain: number; psk: number; cloud: number }
  psk: { identity: string; key: Buffer }
  password: { username: string; password: string }
}

/**
 * Mints a fresh lab into `dir`: a PKI, one PSK device and one password device
 * with random credentials, and a gateway.yaml that `edge-gateway start` would
 * accept as it is. Secrets are written 0600.
 */
export async function prepareLab(
  dir: string,
  ports: { plain: number; psk: number; cloud: number },
): Promise<LabSetup> {
  const root = resolve(dir)
  await mkdir(root, { recursive: true, mode: 0o700 })
  // The gateway's certificate names it, so cloud consumers can check its key binding.
  const pki = await mintLabPki(join(root, 'pki'), { clientCommonName: LAB_GATEWAY_ID })
  const pskKey = randomBytes(16)
  const pskFile = join(root, 'keys', `${LAB_PSK_DEVICE}.psk`)
  await writeSecretFile(pskFile, `${pskKey.toString('hex')}\n`)
  const password = randomBytes(12).toString('base64url')

  const config: ConfigInput = {
    gateway: { id: LAB_GATEWAY_ID, stateDir: 'state' },
    lan: {
      listeners: [
        { name: 'lan-plain', type: 'tcp', host: '127.0.0.1', port: ports.plain },
        { name: 'lan-psk', type: 'tls-psk', host: '127.0.0.1', port: ports.psk },
      ],
    },
    devices: [
      {
        id: LAB_PSK_DEVICE,
        psk: { identity: LAB_PSK_DEVICE, keyFile: pskFile },
        clientIds: [`${LAB_PSK_DEVICE}*`],
      },
      {
        id: LAB_PASSWORD_DEVICE,
        username: LAB_PASSWORD_DEVICE,
        passwordHash: await hashPassword(password),
        clientIds: [`${LAB_PASSWORD_DEVICE}*`],
      },
    ],
    cloud: {
      host: '127.0.0.1',
      port: ports.cloud,
      servername: 'localhost',
      caFile: pki.caFile,
      certFile: pki.clientCertFile,
      keyFile: pki.clientKeyFile,
      // The lab's embedded cloud broker (aedes) speaks MQTT 3.1.1.
      protocolVersion: 4,
      reconnect: { initialDelayMs: 200, maxDelayMs: 5000 },
      topics: [{ local: 'devices/', cloud: `gateways/${LAB_GATEWAY_ID}/devices/` }],
    },
  }
  const configFile = join(root, 'gateway.yaml')
  await writeSecretFile(
    configFile,
    `# Written by \`edge-gateway lab\`; re-written at every lab start.\n${stringify(config)}`,
  )
  return {
    dir: root,
    configFile,
    pki,
    ports,
    psk: { identity: LAB_PSK_DEVICE, key: pskKey },
    password: { username: LAB_PASSWORD_DEVICE, password },
  }
}
