import { spawn } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { connect as netConnect, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { fileURLToPath } from 'node:url'
import v8 from 'node:v8'
import vm from 'node:vm'
import mqtt from 'mqtt'
import mqttPacket from 'mqtt-packet'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LanFixture, PASSWORD_DEVICE, PSK_DEVICE, ROGUE_DEVICE } from '../gateway/protocol/lan-fixture.js'
import { RawClient, remainingLength, str, u16 } from '../gateway/protocol/raw-client.js'
import { waitUntil } from './harness.js'

const HANDSHAKE_MS = 500
const CONNECT_MS = 1500
/** The defaults: the tests below use them as they ship. */
const MAX_PACKET = 262_144
const MAX_CONNECT = 8192
const MB = 1024 * 1024
const ATTACKER = fileURLToPath(new URL('lan-attack-child.mjs', import.meta.url))

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void

const fds = () => readdirSync('/proc/self/fd').length
const rss = () => process.memoryUsage.rss()
function settledRss(): number {
  gc()
  gc()
  return rss()
}

/** Opens a TCP connection and resolves when it is established. */
function open(port: number): Promise<{ socket: Socket; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port })
    socket.on('error', () => undefined)
    socket.once('connect', () => {
      const start = performance.now()
      const closed = new Promise<number>((r) => socket.once('close', () => r(performance.now() - start)))
      resolve({ socket, closed })
    })
    socket.once('error', reject)
  })
}

/** Polls (bounded) until the gateway's listeners hold `n` connections. */
async function connectionsReach(gw: LanFixture, n: number): Promise<void> {
  const deadline = Date.now() + 5000
  while ((await gw.connections()) !== n) {
    if (Date.now() > deadline) throw new Error(`connections: ${await gw.connections()}, expected ${n}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** Races a promise against a bound; the bound's value when it wins. */
const within = <T>(p: Promise<T>, ms: number, otherwise: T) =>
  Promise.race([p, new Promise<T>((r) => setTimeout(() => r(otherwise), ms))])

/**
 * Sends `header`, then `total` bytes in 1 MiB chunks of one shared buffer (so the
 * client itself holds no more memory), until sent or the gateway closes.
 */
async function flood(client: RawClient, header: Buffer, total: number): Promise<number> {
  const chunk = Buffer.alloc(MB, 0x41)
  const { socket } = client
  socket.write(header)
  let written = 0
  while (written < total && !socket.destroyed) {
    written += chunk.length
    if (!socket.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          socket.off('drain', done)
          socket.off('close', done)
          resolve()
        }
        socket.on('drain', done)
        socket.on('close', done)
      })
    }
  }
  return written
}

describe('resource limits on the LAN listeners', () => {
  let gw: LanFixture

  beforeAll(async () => {
    gw = await LanFixture.start({ timeouts: { handshakeMs: HANDSHAKE_MS, connectMs: CONNECT_MS } })
  })

  afterAll(async () => {
    await gw?.stop()
  })

  describe('timeouts', () => {
    it('idle TCP connections without a CONNECT are closed at lan.timeouts.connectMs; connections and fds return to the baseline', async () => {
      const baseFds = fds()
      expect(await gw.connections()).toBe(0)
      const before = gw.protocolErrors().connect_timeout!
      const sockets = await Promise.all(Array.from({ length: 30 }, () => open(gw.port('tcp'))))
      await connectionsReach(gw, 30)
      expect(fds()).toBeGreaterThanOrEqual(baseFds + 60)
      const closedAfter = await Promise.all(sockets.map((s) => within(s.closed, CONNECT_MS + 5000, -1)))
      for (const ms of closedAfter) {
        expect(ms).toBeGreaterThanOrEqual(CONNECT_MS - 100)
        expect(ms).toBeLessThan(CONNECT_MS + 3000)
      }
      expect(gw.protocolErrors().connect_timeout).toBe(before + 30)
      await waitUntil(() => fds() <= baseFds, 5000, `fd count back to ${baseFds}`)
      expect(await gw.connections()).toBe(0)
      // Counted 30 times, logged at most 20 times per address each 10 s (anyone can open connections).
      const lines = gw.logs.records.filter(
        (r) => r.event === 'protocol_error' && r.reason === 'connect_timeout',
      )
      expect(lines.length).toBe(20)
      expect(lines[0]).toMatchObject({ remoteAddress: '127.0.0.1', listener: expect.any(String) })
    })

    it.each(['tls-psk', 'tls'] as const)(
      'idle TCP connections on the %s listener are closed at lan.timeouts.handshakeMs, each reported once',
      async (type) => {
        const baseFds = fds()
        const listener = type === 'tls' ? 'mtls' : 'psk'
        const timeouts = () =>
          gw.logs
            .events('tls_handshake_failed')
            .filter((r) => r.listener === listener && r.reason === 'ERR_TLS_HANDSHAKE_TIMEOUT').length
        const before = timeouts()
        const sockets = await Promise.all(Array.from({ length: 20 }, () => open(gw.port(type))))
        await connectionsReach(gw, 20)
        const closedAfter = await Promise.all(sockets.map((s) => within(s.closed, HANDSHAKE_MS + 5000, -1)))
        for (const ms of closedAfter) {
          expect(ms).toBeGreaterThanOrEqual(HANDSHAKE_MS - 100)
          expect(ms).toBeLessThan(HANDSHAKE_MS + 900)
        }
        await waitUntil(() => fds() <= baseFds, 5000, `fd count back to ${baseFds}`)
        expect(await gw.connections()).toBe(0)
        // Node's own (idle) timeout would report again a second later: wait past it.
        await new Promise((r) => setTimeout(r, 1200))
        expect(timeouts()).toBe(before + 20)
      },
    )

    it('a client that dribbles its ClientHello is closed at handshakeMs: the deadline is absolute, not idle', async () => {
      const { socket, closed } = await open(gw.port('tls-psk'))
      // A handshake record announcing 16 KiB, then one byte every 100 ms.
      socket.write(Buffer.from([0x16, 0x03, 0x01, 0x40, 0x00, 0x01]))
      const drip = setInterval(() => socket.write(Buffer.from([0x00])), 100)
      const ms = await within(closed, HANDSHAKE_MS + 5000, -1)
      clearInterval(drip)
      expect(ms).toBeGreaterThanOrEqual(HANDSHAKE_MS - 100)
      expect(ms).toBeLessThan(HANDSHAKE_MS + 900)
      expect(await gw.connections()).toBe(0)
    })

    it('a handshake that fails is closed at once', async () => {
      const { socket, closed } = await open(gw.port('tls-psk'))
      socket.write(Buffer.from('GET / HTTP/1.1\r\n\r\n'))
      expect(await within(closed, 2000, -1)).toBeGreaterThanOrEqual(0)
      expect(await gw.connections()).toBe(0)
    })

    it('a TLS-PSK device that completes its handshake and sends no CONNECT is closed at connectMs', async () => {
      const before = gw.protocolErrors().connect_timeout!
      const socket = tlsConnect({
        host: '127.0.0.1',
        port: gw.port('tls-psk'),
        ciphers: 'PSK-AES128-GCM-SHA256',
        maxVersion: 'TLSv1.2',
        checkServerIdentity: () => undefined,
        pskCallback: () => ({ identity: PSK_DEVICE.identity, psk: Buffer.from(PSK_DEVICE.keyHex, 'hex') }),
      })
      socket.on('error', () => undefined)
      await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()))
      const start = performance.now()
      const ms = await within(
        new Promise<number>((r) => socket.once('close', () => r(performance.now() - start))),
        CONNECT_MS + 5000,
        -1,
      )
      expect(ms).toBeGreaterThanOrEqual(CONNECT_MS - 100)
      expect(ms).toBeLessThan(CONNECT_MS + 3000)
      expect(gw.protocolErrors().connect_timeout).toBe(before + 1)
      expect(await gw.connections()).toBe(0)
    })
  })

  describe('packet size', () => {
    it('8 CONNECTs announcing 256 MB, each followed by up to 16 MB: closed on the header, counted, memory bounded and returned', async () => {
      const before = gw.protocolErrors().connect_too_large!
      const eventsBefore = gw.logs.events('packet_too_large').length
      const base = settledRss()
      let peak = base
      const sampler = setInterval(() => {
        peak = Math.max(peak, rss())
      }, 10)
      const clients = await Promise.all(Array.from({ length: 8 }, () => RawClient.connect(gw.port('tcp'))))
      const header = Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f]) // CONNECT, remaining length 268,435,455
      const written = await Promise.all(clients.map((c) => flood(c, header, 16 * MB)))
      const outcomes = await Promise.all(clients.map((c) => c.outcome(5000)))
      clearInterval(sampler)

      for (const [i, o] of outcomes.entries()) {
        expect(o.closed).toBe(true)
        expect(o.closedAfterMs).toBeLessThan(2000)
        expect(o.bytes.length).toBe(0)
        expect(written[i]).toBeLessThan(16 * MB)
      }
      expect(gw.protocolErrors().connect_too_large).toBe(before + 8)
      const events = gw.logs.events('packet_too_large').slice(eventsBefore)
      expect(events).toHaveLength(8)
      expect(events[0]).toMatchObject({
        security: true,
        reason: 'connect_too_large',
        listener: 'plain',
        remoteAddress: '127.0.0.1',
        packetType: 'connect',
        bytes: 268_435_460,
        limit: MAX_CONNECT,
      })
      expect(peak - base).toBeLessThan(50 * MB)
      await waitUntil(() => settledRss() - base < 20 * MB, 10_000, 'RSS back within 20 MB of the baseline')
    })

    it("an authenticated device's 50 MB PUBLISH is refused at maxPacketBytes on its header, and not forwarded", async () => {
      const before = gw.protocolErrors().packet_too_large!
      const offers = gw.offers.length
      const base = settledRss()
      let peak = base
      const sampler = setInterval(() => {
        peak = Math.max(peak, rss())
      }, 10)
      const client = await RawClient.authenticated(gw.port('tcp'), 'pass-dev-big')
      client.mark()
      const topic = str('devices/pass-dev/big')
      const size = 50 * MB
      const header = Buffer.concat([
        Buffer.from([0x32]),
        remainingLength(topic.length + 2 + size),
        topic,
        u16(1),
      ])
      const written = await flood(client, header, size)
      const outcome = await client.outcome(5000)
      clearInterval(sampler)
      expect(outcome.closed).toBe(true)
      expect(outcome.closedAfterMs).toBeLessThan(2000)
      expect(outcome.bytes.length).toBe(0) // no PUBACK
      expect(written).toBeLessThan(size)
      expect(gw.offers.length).toBe(offers)
      expect(gw.protocolErrors().packet_too_large).toBe(before + 1)
      expect(gw.logs.events('packet_too_large').at(-1)).toMatchObject({
        security: true,
        reason: 'packet_too_large',
        device: PASSWORD_DEVICE.id,
        clientId: 'pass-dev-big',
        remoteAddress: '127.0.0.1',
        packetType: 'publish',
        limit: MAX_PACKET,
      })
      expect(peak - base).toBeLessThan(50 * MB)
    })

    it('a PUBLISH of exactly maxPacketBytes is acknowledged and forwarded; one byte more closes the connection', async () => {
      const topic = str('devices/pass-dev/edge')
      // Fixed header: 1 byte + 3 bytes of remaining length (16,384 to 2,097,151).
      const payload = MAX_PACKET - 4 - topic.length - 2
      const build = (n: number) =>
        Buffer.concat([
          Buffer.from([0x32]),
          remainingLength(topic.length + 2 + n),
          topic,
          u16(7),
          Buffer.alloc(n, 0x42),
        ])
      const exact = build(payload)
      expect(exact.length).toBe(MAX_PACKET)
      const ok = await RawClient.authenticated(gw.port('tcp'), 'pass-dev-edge')
      ok.send(exact)
      expect(((await ok.waitFor('puback')) as mqttPacket.IPubackPacket).messageId).toBe(7)
      expect(gw.offers.at(-1)).toMatchObject({ topic: 'devices/pass-dev/edge' })
      expect(gw.offers.at(-1)!.payload.length).toBe(payload)
      ok.destroy()

      const over = await RawClient.authenticated(gw.port('tcp'), 'pass-dev-edge2')
      over.mark()
      over.send(build(payload + 1))
      const outcome = await over.outcome()
      expect(outcome.closed).toBe(true)
      expect(outcome.bytes.length).toBe(0)
      expect(gw.logs.events('packet_too_large').at(-1)).toMatchObject({
        bytes: MAX_PACKET + 1,
        limit: MAX_PACKET,
      })
    })

    it('a CONNECT of exactly maxConnectBytes (a Will makes it long) is answered CONNACK 0; one byte more is closed without CONNACK', async () => {
      const build = (willBytes: number) =>
        mqttPacket.generate({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 4,
          clientId: 'pass-dev-will',
          clean: true,
          keepalive: 60,
          username: PASSWORD_DEVICE.username,
          password: Buffer.from(PASSWORD_DEVICE.password),
          will: {
            topic: 'devices/pass-dev/will',
            payload: Buffer.alloc(willBytes, 0x43),
            qos: 1,
            retain: false,
          },
        })
      const willBytes = MAX_CONNECT - (build(0).length + 1) // the remaining length grows to 2 bytes
      const exact = build(willBytes)
      expect(exact.length).toBe(MAX_CONNECT)
      const ok = await RawClient.connect(gw.port('tcp'))
      ok.send(exact)
      expect(((await ok.waitFor('connack')) as mqttPacket.IConnackPacket).returnCode).toBe(0)
      ok.send(Buffer.from([0xe0, 0x00]))
      await ok.outcome()

      const over = await RawClient.connect(gw.port('tcp'))
      over.send(build(willBytes + 1))
      const outcome = await over.outcome()
      expect(outcome.closed).toBe(true)
      expect(outcome.bytes.length).toBe(0)
      expect(gw.logs.events('packet_too_large').at(-1)).toMatchObject({
        reason: 'connect_too_large',
        bytes: MAX_CONNECT + 1,
        limit: MAX_CONNECT,
      })
    })

    it('a 100 KB PUBLISH pipelined behind the CONNECT waits for authentication, then passes', async () => {
      const client = await RawClient.connect(gw.port('tcp'))
      const connect = mqttPacket.generate({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 4,
        clientId: 'pass-dev-pipe',
        clean: true,
        keepalive: 60,
        username: PASSWORD_DEVICE.username,
        password: Buffer.from(PASSWORD_DEVICE.password),
      })
      const publish = mqttPacket.generate({
        cmd: 'publish',
        topic: 'devices/pass-dev/pipe',
        payload: Buffer.alloc(100_000, 0x44),
        qos: 1,
        messageId: 3,
        retain: false,
        dup: false,
      })
      client.send(Buffer.concat([connect, publish]))
      expect(((await client.waitFor('connack')) as mqttPacket.IConnackPacket).returnCode).toBe(0)
      expect(((await client.waitFor('puback')) as mqttPacket.IPubackPacket).messageId).toBe(3)
      expect(gw.offers.at(-1)).toMatchObject({ topic: 'devices/pass-dev/pipe' })
      expect(gw.offers.at(-1)!.payload.length).toBe(100_000)
      client.destroy()
    })

    it('a refused CONNECT pipelined with a large PUBLISH: the PUBLISH is never read', async () => {
      const offers = gw.offers.length
      const client = await RawClient.connect(gw.port('tcp'))
      const connect = mqttPacket.generate({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 4,
        clientId: 'pass-dev-wrong',
        clean: true,
        keepalive: 60,
        username: PASSWORD_DEVICE.username,
        password: Buffer.from('wrong'),
      })
      const publish = mqttPacket.generate({
        cmd: 'publish',
        topic: 'devices/pass-dev/pipe',
        payload: Buffer.alloc(100_000, 0x45),
        qos: 0,
        retain: false,
        dup: false,
      })
      client.send(Buffer.concat([connect, publish]))
      expect(((await client.waitFor('connack')) as mqttPacket.IConnackPacket).returnCode).toBe(4)
      expect((await client.outcome()).closed).toBe(true)
      expect(gw.offers.length).toBe(offers)
    })
  })

  it('after all of it, a device connects and publishes as usual', async () => {
    const client = await mqtt.connectAsync({
      host: '127.0.0.1',
      port: gw.port('tcp'),
      username: PASSWORD_DEVICE.username,
      password: PASSWORD_DEVICE.password,
      clientId: 'pass-dev-after',
      reconnectPeriod: 0,
    })
    await client.publishAsync('devices/pass-dev/after', 'ok', { qos: 1 })
    expect(gw.offers.at(-1)).toMatchObject({ topic: 'devices/pass-dev/after', payload: Buffer.from('ok') })
    await client.endAsync()
    expect(gw.logs.records.filter((r) => (r.level as number) >= 50)).toEqual([])
  })
})

describe('two devices keep publishing while the LAN is attacked', () => {
  let gw: LanFixture

  beforeAll(async () => {
    gw = await LanFixture.start({ timeouts: { handshakeMs: HANDSHAKE_MS, connectMs: CONNECT_MS } })
  })

  afterAll(async () => {
    await gw?.stop()
  })

  /** QoS 1 round trips, one after another, for `ms`; the latencies in ms. */
  async function publishFor(client: mqtt.MqttClient, topic: string, ms: number): Promise<number[]> {
    const latencies: number[] = []
    const end = performance.now() + ms
    while (performance.now() < end) {
      const t0 = performance.now()
      await client.publishAsync(topic, 'reading', { qos: 1 })
      latencies.push(performance.now() - t0)
      // A steady device, not a flood: at most about 500 messages a second.
      await new Promise((r) => setTimeout(r, 2))
    }
    return latencies
  }

  const p99 = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length * 0.99)]!

  it('idle TCP and TLS connections, a dribbled handshake and oversized packets: both devices keep publishing (p99 reported), memory bounded', async () => {
    const psk = await mqtt.connectAsync({
      protocol: 'mqtts',
      host: '127.0.0.1',
      port: gw.port('tls-psk'),
      clientId: 'psk-dev',
      reconnectPeriod: 0,
      ciphers: 'PSK-AES128-GCM-SHA256',
      maxVersion: 'TLSv1.2',
      rejectUnauthorized: false,
      checkServerIdentity: () => undefined,
      pskCallback: () => ({ identity: PSK_DEVICE.identity, psk: Buffer.from(PSK_DEVICE.keyHex, 'hex') }),
    } as mqtt.IClientOptions)
    const plain = await mqtt.connectAsync({
      host: '127.0.0.1',
      port: gw.port('tcp'),
      username: PASSWORD_DEVICE.username,
      password: PASSWORD_DEVICE.password,
      clientId: 'pass-dev-steady',
      reconnectPeriod: 0,
    })
    const both = (ms: number) =>
      Promise.all([
        publishFor(psk, 'devices/psk-dev/steady', ms),
        publishFor(plain, 'devices/pass-dev/steady', ms),
      ]).then(([a, b]) => [...a, ...b])
    await both(2000) // warm up

    // The attack runs in another process. Quiet and attack windows alternate (the attacker stopped
    // with SIGSTOP, then continued), so that the load of other processes on this machine falls on both.
    const attacker = spawn(
      process.execPath,
      [
        ATTACKER,
        String(gw.port('tcp')),
        String(gw.port('tls-psk')),
        ROGUE_DEVICE.identity,
        ROGUE_DEVICE.keyHex,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    )
    attacker.kill('SIGSTOP')
    let report = ''
    attacker.stdout.on('data', (d: Buffer) => {
      report += d.toString()
    })
    const exited = new Promise<number | null>((resolve) => attacker.once('exit', resolve))
    const base = settledRss()
    let phase: 'quiet' | 'attack' = 'quiet'
    const peak = { quiet: base, attack: base }
    const sampler = setInterval(() => {
      peak[phase] = Math.max(peak[phase], rss())
    }, 20)
    const quiet: number[] = []
    const underAttack: number[] = []
    for (let i = 0; i < 3; i++) {
      phase = 'quiet'
      // What the attacker left open is closed by the gateway's timeouts first.
      await connectionsReach(gw, 2)
      quiet.push(...(await both(1500)))
      phase = 'attack'
      attacker.kill('SIGCONT')
      underAttack.push(...(await both(1500)))
      attacker.kill('SIGSTOP')
    }
    attacker.kill('SIGCONT')
    attacker.kill('SIGTERM')
    const killer = setTimeout(() => attacker.kill('SIGKILL'), 10_000)
    expect(await exited).toBe(0)
    clearTimeout(killer)
    clearInterval(sampler)
    const { rounds } = JSON.parse(report) as { rounds: number }
    expect(rounds).toBeGreaterThan(0)

    const quietP99 = p99(quiet)
    const attackP99 = p99(underAttack)
    const quietPeak = peak.quiet - base
    const attackPeak = peak.attack - base
    console.log(
      `${rounds} attack rounds; QoS 1 round trips of 2 devices: p99 ${quietP99.toFixed(2)} ms quiet (${quiet.length}), ${attackP99.toFixed(2)} ms under attack (${underAttack.length}); gateway process RSS at peak +${Math.round(quietPeak / MB)} MB quiet, +${Math.round(attackPeak / MB)} MB under attack`,
    )
    // The p99 goal (within 2x of quiet) is a timing figure: measured and reported here and by
    // bench/attacks.mjs, not gated in a test that shares 2 cores with the rest of the suite.
    console.log(`p99 ratio under attack: ${(attackP99 / quietP99).toFixed(2)} (goal <= 2)`)
    expect(Number.isFinite(attackP99)).toBe(true)
    // What the attack adds to what the same publishing takes anyway.
    expect(attackPeak - quietPeak).toBeLessThan(50 * MB)
    await waitUntil(() => settledRss() - base < 20 * MB, 10_000, 'RSS back within 20 MB of the baseline')
    await psk.endAsync()
    await plain.endAsync()
  }, 150_000) // its rounds are bounded in time; a machine running other suites beside it needs more than 60 s
})
