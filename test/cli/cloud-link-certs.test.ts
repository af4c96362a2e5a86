/**
 * The cloud link's certificate checks, through `edge-gateway start` against a real mosquitto on
 * 127.0.0.1 (docs/security.md: "The cloud link always verifies the broker's certificate; there is
 * no switch to turn that off"). The broker presents a certificate the gateway must refuse: signed
 * by a CA it does not trust, valid but for another name than cloud.servername, or made for
 * clients only (extended key usage clientAuth). In each case the link never comes up, the gateway
 * logs the cause with the TLS error, keeps running and retries with backoff, and nothing reaches
 * the broker: a mosquitto_sub on a second (plain, loopback) listener of the same broker sees no
 * message, and the broker never logs the gateway's client id. The control case, a good
 * certificate, connects, and the same subscriber sees a device message arrive.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { hashPassword } from '../../gateway/index.js'
import {
  type CertificateAuthority,
  createCertificateAuthority,
  issueCertificate,
  type KeyPairPem,
  writePublicFile,
  writeSecretFile,
} from '../../pki/index.js'
import { CloudMosquitto } from '../helpers/mosquitto.js'
import { MosquittoSub } from '../helpers/mosquitto-sub.js'
import { freePort } from '../helpers/ports.js'
import { hasExited, onLines, terminate } from '../helpers/processes.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { connectDevice, publishOutcome } from '../integration/clients.js'
import { waitUntil } from '../integration/harness.js'
import { builtCli, spawnCli } from './run-cli.js'

const SERVERNAME = 'cloud.test'
const CLIENT_ID = 'gw-cert-probe'
const INITIAL_DELAY_MS = 200
const MAX_DELAY_MS = 1000
/** Refused attempts each bad case waits for: enough to see the backoff at work. */
const ATTEMPTS = 4
const PASSWORD = 'cert-test-password'

type Log = Record<string, unknown>

interface Run {
  broker: CloudMosquitto
  sub: MosquittoSub
  gateway: ReturnType<typeof spawnCli>
  logs: Log[]
  target: string
  lanPort: number
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

describe('edge-gateway start: the cloud link refuses a broker certificate it must not trust', () => {
  let dir: string
  let gatewayHash: string
  const files: Record<string, { certFile: string; keyFile: string }> = {}
  let caFile: string
  let run: Run | undefined

  async function writePair(name: string, pair: KeyPairPem): Promise<void> {
    const certFile = join(dir, 'pki', `${name}.pem`)
    const keyFile = join(dir, 'pki', `${name}.key`)
    await writeSecretFile(keyFile, pair.keyPem)
    await writePublicFile(certFile, pair.certPem)
    files[name] = { certFile, keyFile }
  }

  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-cloud-certs-')
    const trustedCa = createCertificateAuthority({ commonName: 'cloud link test CA' })
    const strangerCa = createCertificateAuthority({ commonName: 'a CA the gateway does not trust' })
    caFile = join(dir, 'pki', 'ca.pem')
    await writePair('gateway', issueCertificate(trustedCa, { commonName: 'edge-gateway', kind: 'client' }))
    await writePublicFile(caFile, trustedCa.certPem)
    const server = (ca: CertificateAuthority, kind: 'server' | 'client', name: string) =>
      issueCertificate(ca, { commonName: name, kind, altNames: [name] })
    await writePair('good', server(trustedCa, 'server', SERVERNAME))
    await writePair('untrusted', server(strangerCa, 'server', SERVERNAME))
    await writePair('wrong-name', server(trustedCa, 'server', 'other.test'))
    await writePair('client-only', server(trustedCa, 'client', SERVERNAME))
    gatewayHash = await hashPassword(PASSWORD)
  })

  afterEach(async () => {
    if (!run) return
    const { gateway, sub, broker } = run
    run = undefined
    await terminate(gateway)
    await sub.stop()
    await broker.stop()
  })

  afterAll(async () => {
    if (dir) await removeDir(dir)
  })

  /** A broker presenting `serverCert`, a subscriber on its plain listener, and the gateway. */
  async function start(serverCert: string): Promise<Run> {
    // A stale dist/ fails here, before anything is started that afterEach would not know to stop.
    builtCli()
    const caseDir = join(dir, serverCert)
    await mkdir(caseDir, { recursive: true, mode: 0o700 })
    const plainPort = await freePort()
    const broker = await CloudMosquitto.start({
      dir: caseDir,
      caFile,
      certFile: files[serverCert]!.certFile,
      keyFile: files[serverCert]!.keyFile,
      // The observer's own way in, untouched by the certificate under test.
      extraConfig: [`listener ${plainPort} 127.0.0.1`],
    })
    const sub = await MosquittoSub.start({
      host: '127.0.0.1',
      port: plainPort,
      topic: '#',
      qos: 1,
      extraArgs: ['-t', '$gw/#'],
    })
    const lanPort = await freePort()
    const config = {
      gateway: { id: 'gw-certs', stateDir: join(caseDir, 'state') },
      log: { level: 'info', pretty: false },
      lan: { listeners: [{ type: 'tcp', host: '127.0.0.1', port: lanPort }] },
      devices: [{ id: 'dev', username: 'dev', passwordHash: gatewayHash }],
      cloud: {
        host: '127.0.0.1',
        port: broker.port,
        servername: SERVERNAME,
        caFile,
        certFile: files.gateway!.certFile,
        keyFile: files.gateway!.keyFile,
        clientId: CLIENT_ID,
        connectTimeoutMs: 3000,
        reconnect: { initialDelayMs: INITIAL_DELAY_MS, maxDelayMs: MAX_DELAY_MS },
        topics: [{ local: 'devices/', cloud: 'gw/' }],
      },
    }
    const configFile = join(caseDir, 'gateway.yaml')
    await writeFile(configFile, stringify(config), { mode: 0o600 })
    const gateway = spawnCli(['start', '--config', configFile])
    const logs: Log[] = []
    onLines(gateway.stdout, (line) => {
      try {
        logs.push(JSON.parse(line) as Log)
      } catch {
        logs.push({ msg: line })
      }
    })
    onLines(gateway.stderr, (line) => logs.push({ stderr: line }))
    run = { broker, sub, gateway, logs, target: `127.0.0.1:${broker.port}`, lanPort }
    await waitUntil(() => logs.some((l) => l.msg === 'edge gateway started'), 15_000, 'gateway start')
    return run
  }

  /** The device publishes one QoS 1 message; the gateway acknowledges it (held for the cloud). */
  async function publishFromDevice(r: Run, payload: string): Promise<void> {
    const client = await connectDevice(r.lanPort, { username: 'dev', password: PASSWORD, clientId: 'dev' })
    expect(await publishOutcome(client, 'devices/dev/reading', payload)).toBe('acked')
    await client.endAsync()
  }

  const refusals = (r: Run) => r.logs.filter((l) => l.level === 40 && l.cloud === r.target && 'code' in l)
  // One warn line per failed attempt: the cause, then when the next attempt is.
  const retries = refusals
  const linkUp = (r: Run) => r.logs.filter((l) => l.msg === 'cloud link up')

  /**
   * Waits for ATTEMPTS refused connections (the last ones after a device message was queued),
   * then checks the link never came up, every refusal has the expected cause, the retries back
   * off, the gateway still runs and the broker got nothing from it.
   */
  async function expectRefused(r: Run, expected: { code: string; err: string; msg: string }): Promise<void> {
    await waitUntil(
      () => refusals(r).length >= 1 || linkUp(r).length > 0,
      15_000,
      'a first refused connection',
    )
    expect(linkUp(r)).toEqual([])
    await publishFromDevice(r, 'must-not-reach-the-cloud')
    await waitUntil(
      () => refusals(r).length >= ATTEMPTS && retries(r).length >= ATTEMPTS,
      20_000,
      `${ATTEMPTS} refused connections`,
    )

    for (const refusal of refusals(r)) {
      expect(refusal).toMatchObject({
        cloud: r.target,
        code: expected.code,
        err: expected.err,
        msg: expect.stringMatching(
          new RegExp(`^${escapeRegExp(expected.msg)}; retrying in \\d+ ms \\(attempt \\d+ failed\\)$`),
        ),
      })
    }
    const attempts = retries(r).map((l) => l.attempt)
    expect(attempts.slice(0, ATTEMPTS)).toEqual([1, 2, 3, 4])
    for (const retry of retries(r)) {
      expect(retry.retryInMs).toBeGreaterThanOrEqual(INITIAL_DELAY_MS)
      expect(retry.retryInMs).toBeLessThanOrEqual(MAX_DELAY_MS)
    }
    // Each next attempt waits out the delay announced before it (pino times, in ms).
    for (const retry of retries(r).slice(0, ATTEMPTS - 1)) {
      const after = r.logs.slice(r.logs.indexOf(retry) + 1)
      const next = after.find((l) => refusals(r).includes(l))
      expect(next, `a refusal after ${JSON.stringify(retry)}`).toBeDefined()
      expect(Number(next!.time) - Number(retry.time)).toBeGreaterThanOrEqual(Number(retry.retryInMs) - 1)
    }
    expect(linkUp(r)).toEqual([])
    expect(hasExited(r.gateway)).toBe(false)

    // The TLS handshakes reached the broker (one accepted connection per attempt), and not one
    // became an MQTT session: mosquitto never logged the gateway's client id (no CONNECT read).
    const accepted = () =>
      r.broker
        .logTail(10_000)
        .split('\n')
        .filter(
          (line) =>
            line.includes(`New connection from 127.0.0.1:`) && line.endsWith(`on port ${r.broker.port}.`),
        )
    await waitUntil(() => accepted().length >= ATTEMPTS, 10_000, `${ATTEMPTS} connections in the broker log`)
    const log = r.broker.logTail(10_000)
    expect(log).not.toContain(CLIENT_ID)
    expect(r.sub.messages).toEqual([])
  }

  it('(a) a broker certificate signed by a CA the gateway does not trust', async () => {
    const r = await start('untrusted')
    const err = 'unable to verify the first certificate'
    await expectRefused(r, {
      code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      err,
      msg: `the gateway does not trust the certificate of the cloud broker at ${r.target} (${err}); check cloud.caFile and cloud.servername`,
    })
  })

  it('(b) a broker certificate valid but for another name than cloud.servername', async () => {
    const r = await start('wrong-name')
    const err = `Hostname/IP does not match certificate's altnames: Host: ${SERVERNAME}. is not in the cert's altnames: DNS:other.test`
    await expectRefused(r, {
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
      err,
      msg: `the gateway does not trust the certificate of the cloud broker at ${r.target} (${err}); check cloud.caFile and cloud.servername`,
    })
  })

  it('(c) a broker certificate whose extended key usage is clientAuth only', async () => {
    const r = await start('client-only')
    // OpenSSL checks the purpose for Node (X509_V_ERR_INVALID_PURPOSE): the link is refused.
    const err = 'unsuitable certificate purpose'
    await expectRefused(r, {
      code: 'INVALID_PURPOSE',
      err,
      msg: `the gateway does not trust the certificate of the cloud broker at ${r.target} (${err}); check cloud.caFile and cloud.servername`,
    })
  })

  it('control: a good broker certificate connects, and a device message reaches the subscriber', async () => {
    const r = await start('good')
    await waitUntil(() => linkUp(r).length > 0, 15_000, 'cloud link up')
    expect(refusals(r)).toEqual([])
    await publishFromDevice(r, 'reaches-the-cloud')
    await waitUntil(() => r.sub.messages.some((m) => m.topic === 'gw/dev/reading'), 10_000, 'the message')
    expect(r.sub.messages.filter((m) => m.topic === 'gw/dev/reading')).toEqual([
      { topic: 'gw/dev/reading', qos: 1, payload: 'reaches-the-cloud' },
    ])
    await r.broker.waitForLog(new RegExp(`New client connected from 127\\.0\\.0\\.1:\\d+ as ${CLIENT_ID} `))
  })
})
