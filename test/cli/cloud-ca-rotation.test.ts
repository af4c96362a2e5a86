/**
 * Issue 15, "CA bundle rotation with overlap", the local half: the cloud broker moves to a server
 * certificate from a new CA and the gateway, running all along as `edge-gateway start`, follows
 * without a restart, because it reads `cloud.caFile` again before each reconnect. In the right
 * order (the new CA added to the bundle first, then the broker switched) it reconnects at its next
 * attempt; a broker switched to a CA the bundle does not hold is refused until the bundle holds it,
 * then the link comes back by itself. Nothing the gateway acknowledged meanwhile is lost: a
 * subscriber on the broker's plain listener sees every device message.
 */
import type { ChildProcess } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { hashPassword } from '../../gateway/index.js'
import {
  type CertificateAuthority,
  createCertificateAuthority,
  issueCertificate,
  writePublicFile,
  writeSecretFile,
} from '../../pki/index.js'
import { CloudMosquitto } from '../helpers/mosquitto.js'
import { MosquittoSub } from '../helpers/mosquitto-sub.js'
import { freePort } from '../helpers/ports.js'
import { terminate } from '../helpers/processes.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { connectDevice, publishOutcome } from '../integration/clients.js'
import { waitUntil } from '../integration/harness.js'
import { startGatewayCli } from './run-cli.js'

const SERVERNAME = 'cloud.test'
const PASSWORD = 'ca-rotation-password'

describe('edge-gateway start: the cloud broker moves to a new CA; the gateway follows without a restart', () => {
  let dir: string
  let broker: CloudMosquitto
  let sub: MosquittoSub
  let gateway: ChildProcess
  let logs: Array<Record<string, unknown>> = []
  let lanPort: number
  const cas: Record<string, CertificateAuthority> = {}
  const file = (name: string) => join(dir, name)
  const linkUps = () => logs.filter((l) => l.msg === 'cloud link up').length
  const tlsRefusals = () => logs.filter((l) => l.level === 40 && l.code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE')

  /** The broker's server certificate, from `ca`, written where its config points; then it restarts. */
  async function switchBroker(ca: string): Promise<void> {
    const pair = issueCertificate(cas[ca]!, {
      commonName: SERVERNAME,
      kind: 'server',
      altNames: [SERVERNAME],
    })
    await writePublicFile(file('server.pem'), pair.certPem)
    await writeSecretFile(file('server.key'), pair.keyPem)
    await broker.restart()
  }

  /** The gateway's trust bundle (cloud.caFile): the CAs named, concatenated. */
  const trust = (...names: string[]) =>
    writePublicFile(file('trust.pem'), names.map((n) => cas[n]!.certPem).join(''))

  async function publishFromDevice(payload: string): Promise<void> {
    const client = await connectDevice(lanPort, { username: 'dev', password: PASSWORD, clientId: 'dev' })
    expect(await publishOutcome(client, 'devices/dev/reading', payload)).toBe('acked')
    await client.endAsync()
  }
  const delivered = (payload: string) => sub.messages.some((m) => m.payload === payload)

  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-cloud-ca-')
    for (const name of ['old', 'new', 'other'])
      cas[name] = createCertificateAuthority({ commonName: `cloud CA ${name}` })
    // The broker checks the gateway's client certificate against the old CA throughout.
    await writePublicFile(file('client-ca.pem'), cas.old!.certPem)
    const client = issueCertificate(cas.old!, { commonName: 'gw-ca', kind: 'client' })
    await writePublicFile(file('gateway.pem'), client.certPem)
    await writeSecretFile(file('gateway.key'), client.keyPem)
    const server = issueCertificate(cas.old!, {
      commonName: SERVERNAME,
      kind: 'server',
      altNames: [SERVERNAME],
    })
    await writePublicFile(file('server.pem'), server.certPem)
    await writeSecretFile(file('server.key'), server.keyPem)
    await trust('old')
    const plainPort = await freePort()
    broker = await CloudMosquitto.start({
      dir,
      caFile: file('client-ca.pem'),
      certFile: file('server.pem'),
      keyFile: file('server.key'),
      // Sessions kept across the broker's restarts, so the observer misses nothing while it reconnects.
      persistence: true,
      extraConfig: ['max_queued_messages 0', `listener ${plainPort} 127.0.0.1`],
    })
    sub = await MosquittoSub.start({
      host: '127.0.0.1',
      port: plainPort,
      topic: 'gw/#',
      qos: 1,
      clientId: 'observer',
      cleanSession: false,
    })
    lanPort = await freePort()
    const config = {
      gateway: { id: 'gw-ca', stateDir: file('state') },
      log: { level: 'info', pretty: false },
      lan: { listeners: [{ type: 'tcp', host: '127.0.0.1', port: lanPort }] },
      devices: [{ id: 'dev', username: 'dev', passwordHash: await hashPassword(PASSWORD) }],
      cloud: {
        host: '127.0.0.1',
        port: broker.port,
        servername: SERVERNAME,
        caFile: file('trust.pem'),
        certFile: file('gateway.pem'),
        keyFile: file('gateway.key'),
        connectTimeoutMs: 3000,
        reconnect: { initialDelayMs: 200, maxDelayMs: 1000 },
        topics: [{ local: 'devices/', cloud: 'gw/' }],
      },
    }
    await writeFile(file('gateway.yaml'), stringify(config), { mode: 0o600 })
    ;({ child: gateway, logs } = await startGatewayCli(file('gateway.yaml')))
    await waitUntil(() => linkUps() === 1, 15_000, 'the cloud link up')
  }, 60_000)

  afterAll(async () => {
    if (gateway) await terminate(gateway)
    await sub?.stop()
    await broker?.stop()
    if (dir) await removeDir(dir)
  })

  it('the new CA added to the bundle first, then the broker switched: the gateway reconnects and delivers', async () => {
    await publishFromDevice('before-the-switch')
    await waitUntil(() => delivered('before-the-switch'), 10_000, 'the first message')
    await trust('old', 'new')
    await switchBroker('new')
    await publishFromDevice('during-the-switch')
    await waitUntil(() => linkUps() === 2, 20_000, 'the cloud link up again')
    await waitUntil(() => delivered('during-the-switch'), 10_000, 'the message sent during the switch')
    expect(tlsRefusals()).toEqual([])
    expect(logs.some((l) => String(l.msg).startsWith('cloud.caFile changed'))).toBe(true)
  }, 60_000)

  it('a broker switched to a CA the bundle lacks is refused until the bundle holds it; nothing acknowledged is lost', async () => {
    await switchBroker('other')
    await waitUntil(() => tlsRefusals().length >= 2, 20_000, 'refused connections')
    await publishFromDevice('while-refused')
    expect(linkUps()).toBe(2)
    expect(delivered('while-refused')).toBe(false)
    // The operator adds the CA on disk; the gateway is neither restarted nor signalled.
    await trust('new', 'other')
    await waitUntil(() => linkUps() === 3, 20_000, 'the cloud link up with the bundle that holds the CA')
    await waitUntil(() => delivered('while-refused'), 10_000, 'the message held while refused')
    for (const payload of ['before-the-switch', 'during-the-switch', 'while-refused'])
      expect(sub.messages.filter((m) => m.payload === payload).length, payload).toBeGreaterThanOrEqual(1)
  }, 60_000)
})
