/**
 * The fleet simulator (issue 18, docs/scaling.md): N simulated gateways, each with its own Ed25519
 * signing key, key binding and client certificate from one lab CA, made with the project's own
 * envelope and PKI code from dist/ (not N gateway processes), publishing signed envelopes over M
 * MQTT connections to a cloud mosquitto, with what a real gateway produces after a crash: re-sends
 * of the same gw-seq (the same bytes) and messages out of order within a window.
 *
 * Also the pieces a fleet run needs around it: a Redis server on a loopback port and consumer
 * configs. The cloud broker is the bench's (bench/lib/mosquitto.mjs cloudConf, given the fleet's
 * files: it has the CA and server fields of a lab PKI): MQTT 5, and no queue limit, which a shared
 * subscription needs (mosquitto goes on giving an absent member its turn, queued in its session).
 */
import { spawn } from 'node:child_process'
import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import mqtt from 'mqtt'
import { stringify } from 'yaml'
import { waitForPort } from './ports.mjs'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const dist = (p) => join(ROOT, 'dist', p)

const { EnvelopeKind, BodyProtection, encodeKeyBinding, signEnvelope, signingKid } = await import(
  dist('bridge/envelope.js')
)
const { createCertificateAuthority } = await import(dist('pki/ca.js'))
const { issueCertificate } = await import(dist('pki/issue.js'))
const { generateRsaKey } = await import(dist('pki/keys.js'))
const { writePublicFile, writeSecretFile } = await import(dist('pki/files.js'))

export const CONTROL_PREFIX = '$gw'
export const DATA_PREFIX = 'fleet'

/**
 * A lab CA (its key kept only in memory), the broker's server certificate, a client certificate
 * for the consumers and one for the simulator's connections (written into `dir`), and `gateways`
 * simulated gateways: ids `gw-0001`..., each an Ed25519 signing key and a key binding signed with
 * the key of its own certificate (CN = its id). The gateways' certificates share one RSA key, so a
 * thousand are made in about a minute; each is still its own certificate naming its gateway.
 */
export async function makeFleet(dir, gateways) {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const ca = createCertificateAuthority({ commonName: 'edge-gateway fleet CA' })
  const server = issueCertificate(ca, {
    commonName: 'cloud-broker',
    kind: 'server',
    altNames: ['127.0.0.1', 'localhost'],
  })
  const consumer = issueCertificate(ca, { commonName: 'fleet-consumer', kind: 'client' })
  const simulator = issueCertificate(ca, { commonName: 'fleet-simulator', kind: 'client' })
  const files = {
    caFile: join(dir, 'ca.pem'),
    serverCertFile: join(dir, 'server.pem'),
    serverKeyFile: join(dir, 'server.key'),
    consumerCertFile: join(dir, 'consumer.pem'),
    consumerKeyFile: join(dir, 'consumer.key'),
    simulatorCertFile: join(dir, 'simulator.pem'),
    simulatorKeyFile: join(dir, 'simulator.key'),
  }
  await writeSecretFile(files.serverKeyFile, server.keyPem)
  await writeSecretFile(files.consumerKeyFile, consumer.keyPem)
  await writeSecretFile(files.simulatorKeyFile, simulator.keyPem)
  await writePublicFile(files.caFile, ca.certPem)
  await writePublicFile(files.serverCertFile, server.certPem)
  await writePublicFile(files.consumerCertFile, consumer.certPem)
  await writePublicFile(files.simulatorCertFile, simulator.certPem)

  const shared = generateRsaKey()
  const certificateKey = createPrivateKey(shared.keyPem)
  const list = []
  for (let i = 1; i <= gateways; i++) {
    const id = `gw-${String(i).padStart(4, '0')}`
    const cert = issueCertificate(ca, { commonName: id, kind: 'client', key: shared })
    const { privateKey, publicKey } = generateKeyPairSync('ed25519')
    const kid = signingKid(privateKey)
    const binding = encodeKeyBinding(
      {
        gatewayId: id,
        kid,
        signingKey: publicKey.export({ type: 'spki', format: 'der' }),
        certificate: new X509Certificate(cert.certPem).raw,
        issuedAt: Date.now(),
      },
      certificateKey,
    )
    list.push({ id, key: privateKey, kid, binding })
  }
  return { ...files, gateways: list }
}

/** The consumers' config (cloud.yaml of `edge-gateway cloud consume`), group included when given. */
export function consumerConfig({ fleet, brokerPort, redisPort, group, output = 'stream', stream }) {
  return stringify({
    broker: {
      host: '127.0.0.1',
      port: brokerPort,
      caFile: fleet.caFile,
      certFile: fleet.consumerCertFile,
      keyFile: fleet.consumerKeyFile,
    },
    controlPrefix: CONTROL_PREFIX,
    subscribe: [`${DATA_PREFIX}/#`],
    ...(group && {
      group: {
        name: group,
        redis: { host: '127.0.0.1', port: redisPort, keyPrefix: `${group}:` },
        output,
        ...(stream && { stream }),
        adoptAfterSeconds: 3,
      },
    }),
  })
}

/**
 * redis-server on a loopback port with its data in `dir`, append-only file fsynced on every write
 * (what a consumer group's state needs to survive a Redis restart). Returns the child; stop it by PID.
 */
export async function startRedis({ dir, port, binary = 'redis-server' }) {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const child = spawn(
    binary,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
      '--protected-mode',
      'yes',
      '--daemonize',
      'no',
      '--logfile',
      join(dir, 'redis.log'),
    ],
    { stdio: 'ignore' },
  )
  await new Promise((resolve, reject) => {
    child.once('spawn', resolve)
    child.once('error', (err) =>
      reject(
        err.code === 'ENOENT'
          ? new Error('redis-server is not installed: apt-get install redis-server')
          : err,
      ),
    )
  })
  await waitForPort(port, { gone: () => child.exitCode !== null, what: 'redis-server' })
  return child
}

/**
 * Publishes `perGateway` messages from every simulated gateway (gw-seq 1..perGateway), after each
 * gateway's key binding (retained). Over `connections` MQTT connections (QoS 1, the gateways spread
 * round robin over them), at `rate` messages/s in all (0: as fast as the broker acknowledges, at
 * most `inflight` per connection). `resendEvery`: every n-th message is published a second time
 * later (the same bytes, as a gateway re-sends after a crash); `reorder`: each gateway's messages go
 * out shuffled within windows of that many. Stops by itself; returns what it sent.
 */
export async function simulateFleet({
  fleet,
  brokerPort,
  perGateway,
  connections = 4,
  rate = 0,
  inflight = 64,
  resendEvery = 0,
  reorder = 1,
  payloadBytes = 64,
  gatewayCount = fleet.gateways.length,
  onProgress,
}) {
  const [ca, cert, key] = await Promise.all([
    readFile(fleet.caFile),
    readFile(fleet.simulatorCertFile),
    readFile(fleet.simulatorKeyFile),
  ])
  const clients = []
  for (let i = 0; i < connections; i++) {
    const client = mqtt.connect({
      protocol: 'mqtts',
      host: '127.0.0.1',
      port: brokerPort,
      ca,
      cert,
      key,
      rejectUnauthorized: true,
      protocolVersion: 5,
      clientId: `fleet-sim-${process.pid}-${i}`,
      clean: true,
      reconnectPeriod: 1000,
    })
    await new Promise((resolve, reject) => {
      client.once('connect', resolve)
      client.once('error', reject)
    })
    clients.push(client)
  }
  const gateways = fleet.gateways.slice(0, gatewayCount)
  await Promise.all(
    gateways.map((g, i) =>
      clients[i % connections].publishAsync(`${CONTROL_PREFIX}/${g.id}/binding`, g.binding, {
        qos: 1,
        retain: true,
      }),
    ),
  )
  // The order of sending: round r of every gateway, each gateway's seqs shuffled within windows.
  const order = []
  const seqsOf = () => {
    const seqs = Array.from({ length: perGateway }, (_, i) => i + 1)
    for (let start = 0; start < seqs.length; start += reorder) {
      const end = Math.min(start + reorder, seqs.length)
      for (let i = end - 1; i > start; i--) {
        const j = start + Math.floor(Math.random() * (i - start + 1))
        ;[seqs[i], seqs[j]] = [seqs[j], seqs[i]]
      }
    }
    return seqs
  }
  const perGw = gateways.map(seqsOf)
  for (let r = 0; r < perGateway; r++) for (let g = 0; g < gateways.length; g++) order.push([g, perGw[g][r]])
  const body = Buffer.alloc(payloadBytes, 0x61)
  const envelopeOf = (g, seq) => {
    const gw = gateways[g]
    const cloudTopic = `${DATA_PREFIX}/${gw.id}/sensors/temp`
    const bytes = signEnvelope(gw.key, gw.kid, cloudTopic, {
      kind: EnvelopeKind.message,
      gatewayId: gw.id,
      deviceId: `dev-${g % 100}`,
      topic: 'sensors/temp',
      seq,
      timestamp: Date.now(),
      protection: BodyProtection.plain,
      body,
    })
    return { cloudTopic, bytes }
  }
  const resends = []
  let sent = 0
  let resent = 0
  const started = performance.now()
  const lanes = clients.map(() => [])
  const pump = async (lane, client) => {
    const waiting = new Set()
    for (const item of lane) {
      if (rate > 0) {
        const due = started + (sent / rate) * 1000
        const wait = due - performance.now()
        if (wait > 1) await new Promise((r) => setTimeout(r, wait))
      }
      while (waiting.size >= inflight) await Promise.race(waiting)
      const p = client.publishAsync(item.cloudTopic, item.bytes, { qos: 1 }).then(() => {
        waiting.delete(p)
      })
      waiting.add(p)
      sent++
      if (onProgress && sent % 1000 === 0) onProgress(sent)
    }
    await Promise.all(waiting)
  }
  for (let i = 0; i < order.length; i++) {
    const [g, seq] = order[i]
    const item = envelopeOf(g, seq)
    lanes[g % connections].push(item)
    if (resendEvery > 0 && i % resendEvery === resendEvery - 1) resends.push({ lane: g % connections, item })
  }
  // Re-sends go after what follows them by a while: at the end of each lane.
  for (const r of resends) {
    lanes[r.lane].push(r.item)
    resent++
  }
  await Promise.all(clients.map((c, i) => pump(lanes[i], c)))
  const seconds = (performance.now() - started) / 1000
  await Promise.all(clients.map((c) => c.endAsync()))
  return {
    gateways: gateways.length,
    unique: gateways.length * perGateway,
    resent,
    published: sent,
    seconds,
  }
}

/** Writes a consumer config file and returns its path. */
export async function writeConsumerConfig(dir, name, options) {
  const file = join(dir, `${name}.yaml`)
  await writeFile(file, consumerConfig(options), { mode: 0o600 })
  return file
}
