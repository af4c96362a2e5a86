/**
 * The cloud link's size limit on what the cloud broker sends (bridge/inbound-size.ts): mqtt.js would
 * buffer whatever remaining length a PUBLISH announces (up to 256 MiB) before any check could see it,
 * so a broker that ignores the CONNECT's Maximum Packet Size (a compromised or misconfigured one, or
 * an MQTT 3.1.1 broker, which has no such field) could fill the gateway's memory. The link closes the
 * connection as soon as the header of a packet over MAX_CLOUD_PACKET_BYTES arrives, reports
 * `cloud_message_rejected`, and connects again.
 *
 * A real mosquitto never sends such a packet, so the broker here is a hostile TLS server on loopback
 * that presents the lab's server certificate and asks for the gateway's client certificate.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PassThrough, Writable } from 'node:stream'
import { createServer, type Server, type TLSSocket } from 'node:tls'
import mqtt, { type IClientOptions } from 'mqtt'
import mqttPacket from 'mqtt-packet'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CloudLink, tlsNameOptions } from '../../bridge/cloud-link.js'
import {
  limitInboundPackets,
  MAX_CLOUD_PACKET_BYTES,
  MAX_CLOUD_TOOL_PACKET_BYTES,
  watchPacketSizes,
} from '../../bridge/inbound-size.js'
import { createLogger } from '../../core/logger.js'
import { Metrics } from '../../core/metrics.js'
import { SecurityEvents } from '../../core/security-events.js'
import { type LabPki, mintLabPki } from '../../pki/index.js'
import { remainingLength } from '../gateway/protocol/raw-client.js'
import { labLinkConfig } from '../helpers/cloud-link-config.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { LogCapture, waitUntil } from '../integration/harness.js'

/** An MQTT fixed header: the first byte, then the remaining length as a variable byte integer. */
const fixedHeader = (first: number, remaining: number): Buffer =>
  Buffer.concat([Buffer.from([first]), remainingLength(remaining)])

/** A PUBLISH packet (QoS 0) of exactly `total` bytes. */
function publishOf(total: number): Buffer {
  for (let headerBytes = 2; headerBytes <= 5; headerBytes++) {
    const header = fixedHeader(0x30, total - headerBytes)
    if (header.length === headerBytes) {
      return Buffer.concat([header, Buffer.alloc(total - headerBytes)])
    }
  }
  throw new Error(`no PUBLISH of ${total} bytes`)
}

describe('watchPacketSizes: packet sizes from the fixed headers alone', () => {
  /** A stream read as mqtt.js reads the cloud link's socket (piped to its parser), watched. */
  function watch(limit: number) {
    const stream = new PassThrough()
    let received = 0
    stream.pipe(
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          received += chunk.length
          done()
        },
      }),
    )
    const seen: number[] = []
    watchPacketSizes(stream, limit, (bytes) => seen.push(bytes))
    /** Resolves once everything written was read. */
    const read = async (written: number) => {
      while (received < written) await new Promise((resolve) => setImmediate(resolve))
    }
    return { stream, seen, read }
  }

  it('follows packets cut anywhere across chunks, and calls once for the first packet over the limit', async () => {
    const under = [publishOf(2), publishOf(10), publishOf(200), publishOf(20_000), publishOf(20_000)]
    const over = publishOf(20_001)
    const all = Buffer.concat([...under, over, publishOf(5)])
    // One byte at a time (every header cut at every place), then in chunks of 7 and of 1,000.
    for (const size of [1, 7, 1_000, all.length]) {
      const { stream, seen, read } = watch(20_000)
      for (let at = 0; at < all.length; at += size) stream.write(all.subarray(at, at + size))
      await read(all.length)
      expect(seen, `chunks of ${size}`).toEqual([20_001])
    }
  })

  it('needs only the header: a packet announcing 200 MiB is refused before any of its body', async () => {
    const { stream, seen, read } = watch(MAX_CLOUD_PACKET_BYTES)
    const header = fixedHeader(0x30, 200 * 1024 * 1024)
    stream.write(publishOf(100))
    stream.write(header.subarray(0, 2))
    await read(102)
    expect(seen).toEqual([])
    stream.write(header.subarray(2))
    await read(105)
    expect(seen).toEqual([200 * 1024 * 1024 + 5])
  })

  it('a packet of exactly the limit passes', async () => {
    const { stream, seen, read } = watch(MAX_CLOUD_PACKET_BYTES)
    stream.write(publishOf(MAX_CLOUD_PACKET_BYTES))
    stream.write(publishOf(2))
    stream.write(publishOf(MAX_CLOUD_PACKET_BYTES + 1))
    await read(2 * MAX_CLOUD_PACKET_BYTES + 3)
    expect(seen).toEqual([MAX_CLOUD_PACKET_BYTES + 1])
  })

  it('a remaining length of more than 4 bytes is malformed: said once, and the watch stops (no boundary is known past it)', async () => {
    const stream = new PassThrough()
    stream.resume()
    const seen: number[] = []
    let malformed = 0
    watchPacketSizes(
      stream,
      100,
      (bytes) => seen.push(bytes),
      () => malformed++,
    )
    stream.write(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x7f]))
    stream.write(publishOf(1_000))
    await new Promise((resolve) => setImmediate(resolve))
    expect(malformed).toBe(1)
    expect(seen).toEqual([])
  })
})

describe('the cloud link against a broker that sends an oversize packet', () => {
  const ATTEMPT_BYTES = 64 * 1024 * 1024
  let dir: string
  let pki: LabPki
  let server: Server
  let port: number
  /** Per connection: the CONNECT's properties, and how many bytes of the big PUBLISH went out before it closed. */
  const connections: Array<{
    properties: Record<string, unknown> | undefined
    sent: number
    closed: boolean
  }> = []

  /** Written between the CONNACK and the big PUBLISH's header, when set. */
  let prelude: Buffer | null = null

  /** After the CONNECT: CONNACK, then a PUBLISH announcing 200 MiB, its body written while the socket takes it. */
  function hostile(socket: TLSSocket): void {
    const record = { properties: undefined as Record<string, unknown> | undefined, sent: 0, closed: false }
    connections.push(record)
    const parser = mqttPacket.parser({ protocolVersion: 5 })
    socket.on('error', () => undefined)
    socket.on('close', () => {
      record.closed = true
    })
    parser.on('packet', (packet) => {
      if (packet.cmd !== 'connect') return
      record.properties = packet.properties as Record<string, unknown> | undefined
      socket.write(Buffer.from([0x20, 0x03, 0x00, 0x00, 0x00]))
      // A packet MQTT's parser refuses first, alone in its TLS record: the big header then starts
      // the next chunk, where the parser starts afresh but a watcher of sizes would be lost.
      if (prelude !== null) socket.write(prelude)
      socket.write(fixedHeader(0x30, 200 * 1024 * 1024))
      const chunk = Buffer.alloc(64 * 1024, 0x41)
      const pump = () => {
        while (!record.closed && record.sent < ATTEMPT_BYTES) {
          record.sent += chunk.length
          if (!socket.write(chunk)) {
            socket.once('drain', pump)
            return
          }
        }
      }
      pump()
    })
    socket.on('data', (data: Buffer) => parser.parse(data))
  }

  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-inbound-size-')
    pki = await mintLabPki(join(dir, 'pki'))
    server = createServer(
      {
        key: await readFile(pki.serverKeyFile),
        cert: await readFile(pki.serverCertFile),
        ca: await readFile(pki.caFile),
        requestCert: true,
        rejectUnauthorized: true,
      },
      hostile,
    )
    port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject)
      server.listen({ host: '127.0.0.1', port: 0 }, () => {
        const address = server.address()
        resolve(typeof address === 'object' && address ? address.port : 0)
      })
    })
  })

  afterAll(async () => {
    await new Promise<void>((resolve) => server?.close(() => resolve()))
    if (dir) await removeDir(dir)
  })

  it('advertises its limit, closes the connection at the header, reports it and connects again', async () => {
    const records = new LogCapture()
    const logger = createLogger({ level: 'info', destination: records })
    const metrics = new Metrics()
    const security = new SecurityEvents(logger, metrics)
    const config = labLinkConfig(pki, port)
    const link = new CloudLink(config, 'inbound-size', logger, metrics, {
      onOversize: (bytes, limit) =>
        security.report('cloud_message_rejected', { reason: 'packet_too_large', bytes, limit }, 'too large'),
    })
    const before = process.memoryUsage().arrayBuffers
    await link.start()
    try {
      await waitUntil(() => connections.length >= 2, 15_000, 'a second connection after the first was closed')
      await waitUntil(() => connections[0]!.closed, 5_000, 'the first connection closed')
    } finally {
      await link.stop()
    }
    const first = connections[0]!
    expect(first.properties).toMatchObject({ maximumPacketSize: MAX_CLOUD_PACKET_BYTES })
    // The link stopped reading at the header: the 64 MiB the broker tried to send did not go out
    // (what went out sits in the loopback's socket buffers), and the link holds none of it.
    expect(first.sent).toBeLessThan(ATTEMPT_BYTES / 4)
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 1024 * 1024)
    expect(metrics.get('security_events_total{event="cloud_message_rejected"}')).toBeGreaterThanOrEqual(1)
    const event = records.records.find((l) => l.event === 'cloud_message_rejected')
    expect(event).toMatchObject({ reason: 'packet_too_large', bytes: 200 * 1024 * 1024 + 5 })
    const down = records.records.find((l) => l.code === 'CLOUD_PACKET_TOO_LARGE')
    expect(down?.msg).toContain(
      `the cloud broker sent a packet of ${200 * 1024 * 1024 + 5} bytes, over the ${MAX_CLOUD_PACKET_BYTES} the gateway takes`,
    )
  }, 30_000)
  it('a client that reconnects by itself (the cloud tools) is held to the limit on every connection', async () => {
    const from = connections.length
    const oversize: number[] = []
    const options: IClientOptions & ReturnType<typeof tlsNameOptions> = {
      protocol: 'mqtts',
      host: '127.0.0.1',
      port,
      ...tlsNameOptions('127.0.0.1', undefined),
      ca: await readFile(pki.caFile),
      cert: await readFile(pki.clientCertFile),
      key: await readFile(pki.clientKeyFile),
      protocolVersion: 5,
      properties: { maximumPacketSize: MAX_CLOUD_TOOL_PACKET_BYTES },
      reconnectPeriod: 100,
    }
    const client = mqtt.connect(options)
    limitInboundPackets(client, MAX_CLOUD_TOOL_PACKET_BYTES, (bytes) => oversize.push(bytes))
    try {
      await waitUntil(() => oversize.length >= 3, 15_000, 'three connections closed at the header')
    } finally {
      client.end(true)
    }
    expect(oversize.slice(0, 3)).toEqual([1, 2, 3].map(() => 200 * 1024 * 1024 + 5))
    const mine = connections.slice(from, from + 3)
    expect(mine).toHaveLength(3)
    for (const c of mine) expect(c.sent).toBeLessThan(ATTEMPT_BYTES / 4)
  }, 30_000)

  it('a malformed packet first does not open the way: the connection is closed at it', async () => {
    // A PUBREL with flags 0 (MQTT says 2), announcing 10 bytes of which 2 come: the parser refuses it
    // at its first byte; a watch of sizes alone would skip 10 bytes into the next chunk.
    prelude = Buffer.from([0x60, 0x0a, 0x00, 0x01])
    const from = connections.length
    const closedAt: number[] = []
    const config = labLinkConfig(pki, port)
    const link = new CloudLink(config, 'inbound-malformed', createLogger({ level: 'silent' }), new Metrics())
    const before = process.memoryUsage().arrayBuffers
    await link.start()
    try {
      await waitUntil(() => connections.length >= from + 2, 15_000, 'a second connection')
      await waitUntil(() => connections[from]!.closed, 5_000, 'the first connection closed')
      closedAt.push(connections[from]!.sent)
    } finally {
      await link.stop()
      prelude = null
    }
    expect(closedAt[0]).toBeLessThan(ATTEMPT_BYTES / 4)
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 1024 * 1024)
  }, 30_000)
})
