/**
 * The side every setup shares, started once per run: the cloud mosquitto
 * (mutual TLS) and the subscriber process on `gateways/#`.
 */
import { readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cloudConf, startMosquitto } from './mosquitto.mjs'
import { freePort, waitForPort } from './ports.mjs'
import { hasExited, spawnScript, stopProcess } from './processes.mjs'

const SUBSCRIBER = fileURLToPath(new URL('../subscriber.mjs', import.meta.url))

export async function startCloud(fixtures) {
  const dir = join(fixtures.root, 'cloud')
  await mkdir(dir, { mode: 0o700 })
  const port = await freePort()
  const confFile = join(dir, 'mosquitto.conf')
  await writeFile(confFile, cloudConf({ dir, port, pki: fixtures.pki }))
  const child = startMosquitto({ dir, confFile })
  await waitForPort(port, { gone: () => hasExited(child), what: 'the cloud mosquitto' })
  return { port, pid: child.pid, dir, stop: () => stopProcess(child) }
}

/** `verifyEvery`: the subscriber verifies every n-th message of each publisher with the project's consumer. */
export async function startSubscriber(fixtures, cloud, { verifyEvery = 1 } = {}) {
  const sub = spawnScript(SUBSCRIBER)
  const { pki } = fixtures
  await sub.request(
    {
      type: 'init',
      config: {
        endpoint: {
          transport: 'mtls',
          host: '127.0.0.1',
          port: cloud.port,
          tls: {
            ca: readFileSync(pki.caFile, 'utf8'),
            cert: readFileSync(pki.subscriberCertFile, 'utf8'),
            key: readFileSync(pki.subscriberKeyFile, 'utf8'),
            servername: 'localhost',
          },
        },
        clientId: 'bench-subscriber',
        // The gateways' key bindings (retained) tell the subscriber which signing keys to trust.
        filters: ['gateways/#', '$gw/+/binding'],
        caPem: readFileSync(pki.caFile, 'utf8'),
        recipient: { kidHex: fixtures.recipient.kidHex, privateKeyHex: fixtures.recipient.privateKeyHex },
        verifyEvery,
        creditSocket: join(fixtures.root, 'credits.sock'),
      },
    },
    'ready',
  )
  return {
    ...sub,
    creditSocket: join(fixtures.root, 'credits.sock'),
    stop: () => stopProcess(sub.child, 2_000, 1_000),
  }
}
