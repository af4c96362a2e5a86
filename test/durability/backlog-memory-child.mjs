// Child process of backlog-memory.test.ts, run with --expose-gc: the whole gateway (from dist/, run
// `npm run build` first) with its cloud unreachable, and one device that publishes COUNT small QoS 1
// messages over a raw socket. Prints, as JSON, what the heap and array buffers grew by per queued
// message, and the queue's own index per message.
import { writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqttPacket from 'mqtt-packet'
import { stringify } from 'yaml'
import { startEdgeGateway } from '../../dist/cli/app.js'
import { loadConfig } from '../../dist/config/index.js'
import { createLogger } from '../../dist/core/logger.js'
import { hashPassword } from '../../dist/gateway/index.js'
import { mintLabPki } from '../../dist/pki/index.js'

const COUNT = Number(process.argv[2] ?? 300_000)
const WINDOW = 2000
const TIMEOUT_MS = 240_000
const dir = await mkdtemp(join(tmpdir(), 'backlog-memory-'))

function used() {
  globalThis.gc()
  globalThis.gc()
  const m = process.memoryUsage()
  return { heap: m.heapUsed + m.arrayBuffers, rss: m.rss }
}

try {
  const pki = await mintLabPki(join(dir, 'pki'), { clientCommonName: 'gw-memory' })
  const config = {
    gateway: { id: 'gw-memory', stateDir: 'state' },
    log: { level: 'warn' },
    // One device fills the queue on purpose: no rate or share stops it.
    lan: {
      listeners: [{ type: 'tcp', host: '127.0.0.1', port: 0 }],
      deviceRate: { messagesPerSecond: 1e9, burst: 1e9 },
    },
    devices: [{ id: 'dev', username: 'dev', passwordHash: await hashPassword('pw') }],
    cloud: {
      // Nothing listens on port 1: the link never comes up, everything stays queued.
      host: '127.0.0.1',
      port: 1,
      servername: 'localhost',
      caFile: pki.caFile,
      certFile: pki.clientCertFile,
      keyFile: pki.clientKeyFile,
      reconnect: { initialDelayMs: 1000, maxDelayMs: 5000 },
      queue: { deviceShare: 1 },
      topics: [{ local: 'devices/', cloud: 'gw/' }],
    },
  }
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, stringify(config), { mode: 0o600 })
  const gateway = await startEdgeGateway(await loadConfig(file), createLogger({ level: 'silent' }))
  const before = used()
  const socket = connect(gateway.lan.listener('tcp').port, '127.0.0.1')
  const parser = mqttPacket.parser()
  let acked = 0
  let closed = false
  let connack
  const accepted = new Promise((resolve) => {
    connack = resolve
  })
  parser.on('packet', (p) => {
    if (p.cmd === 'puback') acked++
    else if (p.cmd === 'connack') connack(p.returnCode)
  })
  socket.on('data', (d) => parser.parse(d))
  socket.on('error', (err) => process.stderr.write(`device socket: ${err.message}\n`))
  socket.on('close', () => {
    closed = true
    connack(-1)
  })
  await new Promise((resolve) => socket.once('connect', resolve))
  socket.write(
    mqttPacket.generate({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clean: true,
      clientId: 'dev',
      keepalive: 0,
      username: 'dev',
      password: Buffer.from('pw'),
    }),
  )
  const code = await accepted
  if (code !== 0) throw new Error(`CONNACK ${code}`)
  const payload = Buffer.alloc(32, 7)
  const deadline = Date.now() + TIMEOUT_MS
  let sent = 0
  while (acked < COUNT && !closed && Date.now() < deadline) {
    const chunk = []
    while (sent - acked < WINDOW && sent < COUNT) {
      const messageId = (sent % 65_535) + 1
      chunk.push(mqttPacket.generate({ cmd: 'publish', topic: 'devices/dev/t', payload, qos: 1, messageId }))
      sent++
    }
    if (chunk.length > 0) socket.write(Buffer.concat(chunk))
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
  socket.destroy()
  const after = used()
  const queue = gateway.bridge.queue
  const result = {
    sent,
    acked,
    held: queue.size,
    heapPerMessage: (after.heap - before.heap) / queue.size,
    indexPerMessage: queue.diagnostics().indexBytes / queue.size,
    rssMiB: Math.round(after.rss / 1024 / 1024),
  }
  await gateway.close()
  process.stdout.write(`${JSON.stringify(result)}\n`)
} finally {
  await rm(dir, { recursive: true, force: true })
}
