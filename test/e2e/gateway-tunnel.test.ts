/**
 * Issue 6 acceptance, through a real tunnel: `edge-gateway start` runs inside a gateway network
 * namespace and brings up its own WireGuard tunnel (wireguard-go) from the `vpn` section of its
 * config; the cloud end is configured by `bringUpCloudPeer` in a cloud namespace, where a real
 * mosquitto with mutual TLS listens only on its tunnel address. A device publishes QoS 1 inside
 * the gateway namespace, a mosquitto_sub in the cloud namespace receives. The veth carries
 * nothing but WireGuard UDP; cutting it for longer than the health window turns the tunnel
 * unhealthy (logged by the gateway), the device keeps being acknowledged, and once it returns
 * every acknowledged message arrives.
 *
 * Addresses exist only inside the namespaces: 10.77.1.0/30 on the veth, 10.78.1.0/30 in the tunnel.
 */
import { spawnSync } from 'node:child_process'
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { hashPassword } from '../../gateway/index.js'
import { mintLabPki } from '../../pki/index.js'
import type { TunnelConfig } from '../../vpn/config.js'
import { createKeys } from '../../vpn/keys.js'
import { bringUpCloudPeer, mirrorForCloud } from '../../vpn/peer.js'
import type { Tunnel } from '../../vpn/tunnel.js'
import { builtCli, runCli } from '../cli/run-cli.js'
import { findBinary, MOSQUITTO_INSTALL_HINT } from '../helpers/binaries.js'
import { readEnvelopeUnverified } from '../helpers/envelope.js'
import { cloudMosquittoConf } from '../helpers/mosquitto-config.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { type Capture, type CaptureResult, startCapture } from './capture.js'
import { startEchoServer } from './echo.js'
import { type LabProcess, NetnsLab, requireLab, type VethPair } from './netns.js'

const GATEWAY_WG_PORT = 51830
const CLOUD_WG_PORT = 51831
const GATEWAY_VETH = '10.77.1.1/30'
const CLOUD_VETH_IP = '10.77.1.2'
const GATEWAY_TUNNEL_IP = '10.78.1.1'
const CLOUD_TUNNEL_IP = '10.78.1.2'
const CLOUD_MQTT_PORT = 8883
const LAN_PORT = 1883
const HEALTH_WINDOW_S = 3
/** The veth stays cut this long: well past the health window. */
const CUT_MS = 9000
const PUBLISH_INTERVAL_MS = 20
const MAX_LINES = 200_000
const PUBLISHER = new URL('./scripts/mqtt-publisher.mjs', import.meta.url).pathname

const lab = new NetnsLab()
let dir: string | undefined
let gatewayNs: string
let cloudNs: string
let veth: VethPair
let configFile: string
let gatewayInterface: string
let cloud: Tunnel | undefined
let gateway: LabProcess | undefined
let subscriber: LabProcess
let ackFile: string
let captures: { leaks: Capture; tunnel: Capture } | undefined

/** Polls `probe` every 100 ms until it returns something other than undefined; fails after `timeoutMs`. */
async function eventually<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(100)
  }
}

interface LogLine {
  time: number
  level: number
  msg: string
  [field: string]: unknown
}

/** The gateway's JSON log lines so far. */
function gatewayLog(): LogLine[] {
  return (gateway?.lines() ?? []).flatMap((line) => {
    try {
      return [JSON.parse(line) as LogLine]
    } catch {
      return []
    }
  })
}

/** The first log line from index `since` on that matches; fails if the gateway exits first. */
function waitForLog(
  what: string,
  timeoutMs: number,
  match: (line: LogLine) => boolean,
  since = 0,
): Promise<LogLine> {
  return eventually(what, timeoutMs, async () => {
    if (gateway?.daemon.hasExited()) {
      throw new Error(
        `edge-gateway exited while waiting for ${what}: ${gateway.lines().slice(-10).join('\n')}`,
      )
    }
    return gatewayLog().slice(since).find(match)
  })
}

interface Received {
  topic: string
  payload: string
  seq: string | undefined
}

/**
 * Messages mosquitto_sub printed (`-F '%t|%q|%x|%P'`: the payload in hex, since it is the
 * gateway's binary signed envelope), in arrival order, with the envelope's body as payload.
 */
function received(): Received[] {
  return subscriber.lines().flatMap((line) => {
    const m = /^(gw\/[^|]*)\|1\|([0-9a-f]*)\|(.*)$/.exec(line)
    if (m === null) return []
    const envelope = readEnvelopeUnverified(Buffer.from(m[2]!, 'hex'))
    if (!envelope) return []
    return [{ topic: m[1]!, payload: envelope.body.toString(), seq: /gw-seq:(\d+)/.exec(m[3]!)?.[1] }]
  })
}

async function acknowledged(): Promise<string[]> {
  try {
    return (await readFile(ackFile, 'utf8')).split('\n').filter(Boolean)
  } catch {
    return []
  }
}

/** TCP sockets listening inside `ns`, as `address:port`. */
async function listening(ns: string): Promise<string[]> {
  const { stdout } = await lab.exec(ns, 'ss', ['-Hltn'])
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => line.trim().split(/\s+/)[3] ?? line)
}

/**
 * PIDs inside `ns` but the `ip` and `wg` a running gateway starts for a moment at each health
 * poll: the long-lived processes (the gateway, its wireguard-go).
 */
async function daemons(ns: string): Promise<number[]> {
  const pids = await lab.pids(ns)
  const names = await Promise.all(
    pids.map((pid) =>
      readFile(`/proc/${pid}/comm`, 'utf8').then(
        (c) => c.trim(),
        () => '',
      ),
    ),
  )
  return pids.filter((_, i) => names[i] !== 'ip' && names[i] !== 'wg' && names[i] !== '')
}

/** Runs the CLI inside `ns` to completion; stdout and stderr lines together, in order. */
async function cliIn(ns: string, args: string[]): Promise<{ code: number | null; lines: string[] }> {
  const proc = await lab.spawn(ns, process.execPath, [builtCli(), ...args])
  const exit = await Promise.race([proc.daemon.exited, sleep(60_000).then(() => null)])
  if (exit === null) {
    await proc.stop(1000)
    throw new Error(`edge-gateway ${args.join(' ')} did not finish within 60 s: ${proc.lines().join(' | ')}`)
  }
  return { code: exit.code, lines: proc.lines() }
}

/** Whether `interfaceName` exists inside `ns`. */
async function hasLink(ns: string, interfaceName: string): Promise<boolean> {
  const { stdout } = await lab.exec(ns, 'ip', ['-o', 'link', 'show'])
  return stdout.split('\n').some((line) => line.split(': ')[1]?.split('@')[0] === interfaceName)
}

beforeAll(async () => {
  await requireLab(['ip', 'wg', 'wireguard-go', 'tcpdump', 'ss'])
  for (const tool of ['mosquitto', 'mosquitto_sub']) await findBinary(tool, MOSQUITTO_INSTALL_HINT)
  await findBinary('stdbuf', 'install it with `apt-get install coreutils`')
  dir = await makeTempDir('edge-gw-vpn-e2e')
  gatewayNs = await lab.addNamespace('gw')
  cloudNs = await lab.addNamespace('cl')
  veth = await lab.addVethPair(
    { ns: gatewayNs, address: GATEWAY_VETH },
    { ns: cloudNs, address: `${CLOUD_VETH_IP}/30` },
    { staticNeighbours: true },
  )

  // Mutual TLS to the cloud broker, which the gateway reaches by its tunnel address.
  const pki = await mintLabPki(join(dir, 'pki'), { serverNames: [CLOUD_TUNNEL_IP] })
  const cloudKeys = await createKeys({ privateKeyFile: join(dir, 'cloud.key') })
  gatewayInterface = lab.name('wgg')
  const vpn = {
    interfaceName: gatewayInterface,
    implementation: 'wireguard-go',
    privateKeyFile: join(dir, 'keys', 'gateway.key'),
    listenPort: GATEWAY_WG_PORT,
    addresses: [`${GATEWAY_TUNNEL_IP}/30`],
    peer: {
      publicKey: cloudKeys.publicKey,
      presharedKeyFile: join(dir, 'keys', 'wg.psk'),
      endpoint: `${CLOUD_VETH_IP}:${CLOUD_WG_PORT}`,
      allowedIps: [`${CLOUD_TUNNEL_IP}/32`],
      persistentKeepalive: 1,
    },
    healthyHandshakeSeconds: HEALTH_WINDOW_S,
    pollMs: 250,
  } satisfies TunnelConfig
  configFile = join(dir, 'gateway.yaml')
  const config = {
    gateway: { id: 'gw-vpn', stateDir: join(dir, 'state') },
    log: { level: 'info', pretty: false },
    lan: { listeners: [{ type: 'tcp', host: '127.0.0.1', port: LAN_PORT }] },
    devices: [
      { id: 'dev', username: 'dev', passwordHash: await hashPassword('tunnel-test'), clientIds: ['dev-*'] },
    ],
    cloud: {
      host: CLOUD_TUNNEL_IP,
      port: CLOUD_MQTT_PORT,
      caFile: pki.caFile,
      certFile: pki.clientCertFile,
      keyFile: pki.clientKeyFile,
      reconnect: { initialDelayMs: 100, maxDelayMs: 1000 },
      topics: [{ local: 'devices/', cloud: 'gw/' }],
    },
    vpn,
  }
  await writeFile(configFile, stringify(config), { mode: 0o600 })

  // The gateway's keys through its own CLI; its public key goes to the cloud end.
  const keys = await runCli(['vpn', 'keys', '--config', configFile])
  if (keys.code !== 0) throw new Error(`edge-gateway vpn keys failed: ${keys.stderr}`)
  const gatewayPublicKey = keys.stdout.trim()

  cloud = await bringUpCloudPeer(
    mirrorForCloud(vpn, {
      interfaceName: lab.name('wgc'),
      privateKeyFile: join(dir, 'cloud.key'),
      gatewayPublicKey,
      addresses: [`${CLOUD_TUNNEL_IP}/30`],
      listenPort: CLOUD_WG_PORT,
      implementation: 'wireguard-go',
      // The cloud sends keepalives too, so a 3 s health window means something.
      persistentKeepalive: 1,
    }),
    { netns: cloudNs },
  )

  // The cloud broker listens on its tunnel address only.
  const brokerDir = join(dir, 'cloud')
  await mkdir(brokerDir, { recursive: true, mode: 0o700 })
  const brokerConf = join(brokerDir, 'mosquitto.conf')
  await writeFile(
    brokerConf,
    cloudMosquittoConf({
      dir: brokerDir,
      host: CLOUD_TUNNEL_IP,
      port: CLOUD_MQTT_PORT,
      caFile: pki.caFile,
      certFile: pki.serverCertFile,
      keyFile: pki.serverKeyFile,
      persistence: false,
      extraConfig: ['max_queued_messages 0'],
    }),
    { mode: 0o600 },
  )
  await lab.spawn(cloudNs, await findBinary('mosquitto', MOSQUITTO_INSTALL_HINT), ['-c', brokerConf])
  await eventually('mosquitto to listen', 10_000, async () =>
    (await listening(cloudNs)).length > 0 ? true : undefined,
  )

  subscriber = await lab.spawn(
    cloudNs,
    'stdbuf',
    [
      '-oL',
      'mosquitto_sub',
      '-d',
      '-V',
      'mqttv5',
      '-F',
      '%t|%q|%x|%P',
      '-h',
      CLOUD_TUNNEL_IP,
      '-p',
      String(CLOUD_MQTT_PORT),
      '--cafile',
      pki.caFile,
      '--cert',
      pki.clientCertFile,
      '--key',
      pki.clientKeyFile,
      '-i',
      'cloud-subscriber',
      '-q',
      '1',
      '-t',
      'gw/#',
    ],
    { maxLines: MAX_LINES },
  )
  await subscriber.waitForLine(/^Subscribed \(mid: \d+\): 1$/)
  ackFile = join(dir, 'acked.txt')
}, 120_000)

afterAll(async () => {
  const errors: unknown[] = []
  for (const capture of [captures?.leaks, captures?.tunnel]) await capture?.stop().catch(() => undefined)
  // The gateway first (SIGTERM: it brings its tunnel down), then everything the lab started.
  await gateway?.stop(10_000).catch((err: unknown) => errors.push(err))
  await cloud?.down().catch((err: unknown) => errors.push(err))
  await lab.cleanup().catch((err: unknown) => errors.push(err))
  if (dir !== undefined) await removeDir(dir)
  if (errors.length > 0) throw new AggregateError(errors, 'gateway tunnel e2e cleanup failed')
}, 60_000)

describe('edge-gateway start with its own WireGuard tunnel (issue 6 acceptance)', () => {
  it('the cloud broker listens only on its tunnel address', async () => {
    expect(await listening(cloudNs)).toEqual([`${CLOUD_TUNNEL_IP}:${CLOUD_MQTT_PORT}`])
  })

  it('brings the tunnel up before the bridge connects, carries QoS 1 through it, holds while it is cut, and loses nothing acknowledged', async () => {
    captures = {
      // Anything on the veth that is not WireGuard's UDP (either end's port) is a leak.
      leaks: await startCapture(
        lab,
        gatewayNs,
        veth.a.name,
        `not (udp port ${GATEWAY_WG_PORT} or udp port ${CLOUD_WG_PORT})`,
      ),
      // The control: the same capture does see the tunnel.
      tunnel: await startCapture(lab, gatewayNs, veth.a.name, `udp port ${CLOUD_WG_PORT}`),
    }

    gateway = await lab.spawn(gatewayNs, process.execPath, [builtCli(), 'start', '--config', configFile], {
      maxLines: MAX_LINES,
    })
    const started = await waitForLog('edge gateway started', 30_000, (l) => l.msg === 'edge gateway started')
    const tunnelUp = gatewayLog().find((l) => l.msg === 'wireguard tunnel up')
    expect(tunnelUp).toMatchObject({ interface: gatewayInterface, implementation: 'wireguard-go' })
    const healthy = await waitForLog(
      'the tunnel to be healthy',
      15_000,
      (l) => l.event === 'tunnel_health' && l.healthy === true,
    )
    expect(healthy).toMatchObject({ level: 30, up: true, interface: gatewayInterface })
    expect(healthy.msg).toMatch(
      new RegExp(
        `^vpn tunnel ${gatewayInterface} healthy \\(handshake \\d+\\.\\d s ago, endpoint ${CLOUD_VETH_IP}:${CLOUD_WG_PORT}\\)(; the bridge resumes)?$`,
      ),
    )
    // Before it, at most the first poll's "no handshake yet", while the first handshake was under way.
    const before = gatewayLog().filter((l) => l.event === 'tunnel_health' && l.time < healthy.time)
    expect(before.map((l) => l.reason)).toEqual(before.length === 0 ? [] : ['no handshake with the peer yet'])
    const healthyLines = () => gatewayLog().filter((l) => l.event === 'tunnel_health' && l.healthy === true)
    const linkUp = await waitForLog('the cloud link', 20_000, (l) => l.msg === 'cloud link up')
    // The tunnel came up before the bridge connected through it.
    expect(tunnelUp!.time).toBeLessThanOrEqual(linkUp.time)
    expect(started.time).toBeGreaterThanOrEqual(tunnelUp!.time)
    expect(gatewayLog().some((l) => l.event === 'vpn_off')).toBe(false)

    // `vpn status` inside the namespace sees the same tunnel.
    const status = await lab.exec(
      gatewayNs,
      process.execPath,
      [builtCli(), 'vpn', 'status', '--json', '--config', configFile],
      {
        timeoutMs: 30_000,
      },
    )
    expect(JSON.parse(status.stdout)).toMatchObject({
      interfaceName: gatewayInterface,
      up: true,
      healthy: true,
      endpoint: `${CLOUD_VETH_IP}:${CLOUD_WG_PORT}`,
    })

    const publisher = await lab.spawn(
      gatewayNs,
      process.execPath,
      [
        PUBLISHER,
        JSON.stringify({
          host: '127.0.0.1',
          port: LAN_PORT,
          username: 'dev',
          password: 'tunnel-test',
          clientId: 'dev-1',
          topic: 'devices/dev/seq',
          prefix: 'm',
          intervalMs: PUBLISH_INTERVAL_MS,
          window: 100,
          ackFile,
        }),
      ],
      { maxLines: MAX_LINES },
    )
    await publisher.waitForLine(/^connected$/, 15_000)
    await eventually('messages through the tunnel', 20_000, async () =>
      received().length >= 50 && (await acknowledged()).length >= 50 ? true : undefined,
    )

    // Cut the tunnel mid-stream: the gateway's end of the veth goes down.
    const logCount = gatewayLog().length
    const cutAt = Date.now()
    await veth.setUp('a', false)
    const unhealthy = await waitForLog(
      'the gateway to report the tunnel unhealthy',
      (HEALTH_WINDOW_S + 10) * 1000,
      (l) => l.event === 'tunnel_health' && l.healthy === false,
      logCount,
    )
    expect(unhealthy).toMatchObject({ level: 40, up: true, interface: gatewayInterface })
    expect(unhealthy.msg).toMatch(
      new RegExp(
        `^vpn tunnel ${gatewayInterface} unhealthy \\(handshake \\d+\\.\\d s ago\\): no handshake or traffic from the peer for [\\d.]+ s \\(window ${HEALTH_WINDOW_S} s\\); the bridge holds messages in the queue$`,
      ),
    )
    expect(unhealthy.time - cutAt).toBeGreaterThanOrEqual((HEALTH_WINDOW_S - 1) * 1000)
    const ackedAtUnhealthy = (await acknowledged()).length
    const receivedAtUnhealthy = received().length
    await sleep(Math.max(0, cutAt + CUT_MS - Date.now()))
    const ackedDuringCut = (await acknowledged()).length - ackedAtUnhealthy
    // The device kept publishing and the gateway kept acknowledging (into its queue).
    expect(ackedDuringCut).toBeGreaterThan(50)
    expect(received().length).toBe(receivedAtUnhealthy)
    expect(healthyLines()).toHaveLength(1)

    const restoredAt = Date.now()
    await veth.setUp('a', true)
    const back = await waitForLog(
      'the tunnel to be healthy again',
      20_000,
      (l) => l.event === 'tunnel_health' && l.healthy === true,
      logCount,
    )
    expect(back.time).toBeGreaterThanOrEqual(restoredAt)
    expect(back.msg).toMatch(/; the bridge resumes$/)
    await sleep(2000)

    publisher.signal('SIGTERM')
    const done = await publisher.waitForLine(/^done /, 20_000)
    const counts = /^done sent=(\d+) acked=(\d+) inflight=(\d+)$/.exec(done)
    expect(counts).not.toBeNull()
    const sent = Number(counts![1])
    const acked = await acknowledged()
    expect(new Set(acked).size).toBe(acked.length)
    expect(acked.length).toBe(Number(counts![2]))

    // The backlog drains: every acknowledged message reaches the cloud broker.
    await eventually('the backlog to drain', 60_000, async () => {
      const got = new Set(received().map((m) => m.payload))
      return acked.every((p) => got.has(p)) ? true : undefined
    })
    await sleep(1000) // late duplicates, if any, show up too
    const messages = received()
    const payloads = new Set(messages.map((m) => m.payload))
    const seqs = new Set(messages.map((m) => m.seq))
    const lost = acked.filter((p) => !payloads.has(p))
    const duplicates = messages.length - seqs.size
    expect(messages.every((m) => m.seq !== undefined && m.topic === 'gw/dev/seq')).toBe(true)
    // One gw-seq per payload: a duplicate is the same message again, never two messages with one number.
    expect(seqs.size).toBe(payloads.size)

    const leaks: CaptureResult = await captures.leaks.stop()
    const carried: CaptureResult = await captures.tunnel.stop()
    captures = undefined
    console.log(
      `\ntunnel cut ${CUT_MS / 1000} s: sent ${sent}, acknowledged ${acked.length} (${ackedDuringCut} while cut), received ${payloads.size} distinct, duplicates ${duplicates} (by gw-seq), acknowledged lost ${lost.length}; veth capture: ${leaks.captured} packets not WireGuard, ${carried.captured} WireGuard`,
    )
    expect(lost).toEqual([])
    expect(leaks.packets).toEqual([])
    expect(leaks.captured).toBe(0)
    expect(carried.captured).toBeGreaterThan(100)
    expect(carried.packets.every((p) => p.includes('UDP'))).toBe(true)
  }, 240_000)

  it('brings its tunnel down on SIGTERM', async () => {
    expect(gateway).toBeDefined()
    const exit = await gateway!.stop(15_000)
    expect(exit).toEqual({ code: 0, signal: null })
    expect(
      gatewayLog().some((l) => l.msg === 'wireguard tunnel down' && l.interface === gatewayInterface),
    ).toBe(true)
    expect(gatewayLog().at(-1)?.msg).toBe('edge gateway stopped')
    expect(await hasLink(gatewayNs, gatewayInterface)).toBe(false)
    // Its wireguard-go is gone: nothing the gateway started is left in its namespace.
    expect(await lab.pids(gatewayNs)).toEqual([])
  }, 60_000)

  it('a gateway killed with SIGKILL leaves its tunnel behind; the next start removes that leftover and comes up', async () => {
    gateway = await lab.spawn(gatewayNs, process.execPath, [builtCli(), 'start', '--config', configFile], {
      maxLines: MAX_LINES,
    })
    await waitForLog('edge gateway started', 30_000, (l) => l.msg === 'edge gateway started')
    const killed = gateway.daemon.pid
    // The gateway and its wireguard-go.
    const running = await daemons(gatewayNs)
    expect(running).toContain(killed)
    expect(running).toHaveLength(2)
    const orphans = running.filter((pid) => pid !== killed)
    gateway.signal('SIGKILL')
    await gateway.daemon.exited
    // What a crash leaves: the interface, and its wireguard-go, now nobody's child.
    expect(await hasLink(gatewayNs, gatewayInterface)).toBe(true)
    expect(await lab.pids(gatewayNs)).toEqual(orphans)

    gateway = await lab.spawn(gatewayNs, process.execPath, [builtCli(), 'start', '--config', configFile], {
      maxLines: MAX_LINES,
    })
    await waitForLog('edge gateway started', 30_000, (l) => l.msg === 'edge gateway started')
    expect(gatewayLog().find((l) => l.event === 'vpn_leftover_removed')).toMatchObject({
      level: 40,
      interface: gatewayInterface,
      previousPid: killed,
    })
    expect(gatewayLog().some((l) => l.msg === 'wireguard tunnel up')).toBe(true)
    // The orphaned wireguard-go was stopped (it exits once its interface is gone: a moment later
    // on a loaded machine); what runs is the new gateway and its own.
    let now = await daemons(gatewayNs)
    for (let i = 0; i < 100 && now.includes(orphans[0]!); i++) {
      await new Promise((r) => setTimeout(r, 100))
      now = await daemons(gatewayNs)
    }
    expect(now).toHaveLength(2)
    expect(now).toContain(gateway.daemon.pid)
    expect(now).not.toContain(orphans[0])
    await waitForLog('the cloud link', 20_000, (l) => l.msg === 'cloud link up')

    // `vpn down` run by hand beside the running gateway is refused: the tunnel and the gateway stay.
    const down = await cliIn(gatewayNs, ['vpn', 'down', '--config', configFile])
    expect(down.code).toBe(1)
    expect(down.lines).toEqual([
      expect.stringMatching(
        new RegExp(
          `^edge-gateway: the gateway running as pid ${gateway.daemon.pid} brought ${gatewayInterface} up .*\\[VPN_ERR_TUNNEL_IN_USE\\]$`,
        ),
      ),
    ])
    expect(await hasLink(gatewayNs, gatewayInterface)).toBe(true)
    expect(await daemons(gatewayNs)).toHaveLength(2)

    expect(await gateway.stop(15_000)).toEqual({ code: 0, signal: null })
    expect(await hasLink(gatewayNs, gatewayInterface)).toBe(false)
    expect(await lab.pids(gatewayNs)).toEqual([])
  }, 120_000)

  it('the cloud routed around the tunnel: the link is cut and none is made until the route is back; the tunnel gone: the gateway exits 1; no payload leaves around it', async () => {
    const leaks = await startCapture(
      lab,
      gatewayNs,
      veth.a.name,
      `not (udp port ${GATEWAY_WG_PORT} or udp port ${CLOUD_WG_PORT})`,
    )
    captures = { leaks, tunnel: await startCapture(lab, gatewayNs, veth.a.name, `udp port ${CLOUD_WG_PORT}`) }
    gateway = await lab.spawn(gatewayNs, process.execPath, [builtCli(), 'start', '--config', configFile], {
      maxLines: MAX_LINES,
    })
    await waitForLog('the cloud link', 30_000, (l) => l.msg === 'cloud link up')
    const publish = (payload: string) =>
      lab.exec(gatewayNs, 'mosquitto_pub', [
        ...['-h', '127.0.0.1', '-p', String(LAN_PORT), '-u', 'dev', '-P', 'tunnel-test'],
        ...['-i', 'dev-route', '-q', '1', '-t', 'devices/dev/route', '-m', payload],
      ])
    const arrived = (payload: string) => received().some((m) => m.payload === payload)
    await publish('before')
    await eventually('a message through the tunnel', 15_000, async () =>
      arrived('before') ? true : undefined,
    )

    // A more specific route to the cloud broker's tunnel address, over the WAN veth.
    const logCount = gatewayLog().length
    const around = [`${CLOUD_TUNNEL_IP}/32`, 'via', CLOUD_VETH_IP, 'dev', veth.a.name]
    await lab.exec(gatewayNs, 'ip', ['route', 'replace', ...around])
    const cut = await waitForLog(
      'the link to be cut',
      10_000,
      (l) => /^cloud link cut: /.test(String(l.msg)),
      logCount,
    )
    const unhealthy = gatewayLog()
      .slice(logCount)
      .find((l) => l.event === 'tunnel_health' && l.healthy === false)
    expect(unhealthy?.reason).toBe(
      `the kernel routes the cloud broker address ${CLOUD_TUNNEL_IP} through ${veth.a.name} via ${CLOUD_VETH_IP}, not through ${gatewayInterface}`,
    )
    // Accepted into the queue, and held: no connection is made around the tunnel (reconnects every 0.1 to 1 s).
    await publish('during')
    await sleep(3000)
    expect(arrived('during')).toBe(false)
    const afterCut = gatewayLog().filter((l) => l.time > cut.time)
    expect(afterCut.filter((l) => l.msg === 'cloud link up')).toEqual([])

    await lab.exec(gatewayNs, 'ip', ['route', 'del', ...around])
    await waitForLog('the link back through the tunnel', 20_000, (l) => l.msg === 'cloud link up', logCount)
    await eventually('the held message', 20_000, async () => (arrived('during') ? true : undefined))

    // The tunnel's wireguard-go dies (a crash, the OOM killer): nothing brings the tunnel back by itself.
    const wireguardGo: number[] = []
    for (const pid of await lab.pids(gatewayNs)) {
      const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')
      if (comm.trim() === 'wireguard-go') wireguardGo.push(pid)
    }
    expect(wireguardGo).toHaveLength(1)
    process.kill(wireguardGo[0]!, 'SIGKILL')
    const exit = await gateway.daemon.exited
    expect(exit).toEqual({ code: 1, signal: null })
    expect(gateway.lines()).toContain(
      `edge-gateway: the tunnel ${gatewayInterface} that the gateway brought up is gone (its wireguard-go exited, or the interface was deleted); the gateway stops so that its supervisor starts it and the tunnel again; exiting`,
    )
    expect(
      gatewayLog()
        .slice(logCount)
        .filter((l) => l.msg === 'cloud link up'),
    ).toHaveLength(1)
    expect(await hasLink(gatewayNs, gatewayInterface)).toBe(false)
    const leaked: CaptureResult = await captures.leaks.stop()
    await captures.tunnel.stop()
    captures = undefined
    expect(await lab.pids(gatewayNs)).toEqual([])
    // Around the tunnel went only the close of the connection cut when the route changed: its FIN
    // and RST, no payload. No new connection (no SYN) and no byte of MQTT or TLS. (Once wireguard-go
    // is killed, the kernel may answer the cloud end's WireGuard packets with ICMP port unreachable.)
    const close = new RegExp(
      ` > ${CLOUD_TUNNEL_IP.replaceAll('.', '\\.')}\\.${CLOUD_MQTT_PORT}: Flags \\[[FR]\\.?\\], .*length 0$`,
    )
    const wireguardGone = new RegExp(`: ICMP .*udp port (${GATEWAY_WG_PORT}|${CLOUD_WG_PORT}) unreachable`)
    const closing = leaked.packets.filter((p) => close.test(p))
    expect(closing.length).toBeLessThanOrEqual(4)
    expect(leaked.packets.filter((p) => !close.test(p) && !wireguardGone.test(p))).toEqual([])
  }, 120_000)

  it('vpn up leaves the tunnel running after it exits, start refuses to take it over, vpn down removes it', async () => {
    // A record a killed gateway left (its PID no longer runs): vpn up's interface is not that
    // gateway's leftover, so vpn up drops the record and start refuses the interface, not removes it.
    const owner = join(dir!, 'state', 'vpn', `${gatewayInterface}.owner`)
    const exited = spawnSync(process.execPath, ['-e', '0']).pid
    await writeFile(owner, `${exited}\n`, { mode: 0o600 })
    const up = await cliIn(gatewayNs, ['vpn', 'up', '--config', configFile])
    await expect(stat(owner)).rejects.toMatchObject({ code: 'ENOENT' })
    expect(up.code).toBe(0)
    const m = new RegExp(
      `^tunnel ${gatewayInterface} up \\(wireguard-go, pid (\\d+)\\); ${CLOUD_TUNNEL_IP.replaceAll('.', '\\.')} is routed through it$`,
    ).exec(up.lines.join('\n'))
    expect(m, up.lines.join('\n')).not.toBeNull()
    const pid = Number(m![1])
    expect(await lab.pids(gatewayNs)).toEqual([pid])
    const status = await eventually('vpn status to report a healthy tunnel', 20_000, async () => {
      const result = await cliIn(gatewayNs, ['vpn', 'status', '--config', configFile])
      return result.code === 0 ? result.lines : undefined
    })
    expect(status.slice(0, 3)).toEqual([`interface  ${gatewayInterface}`, 'up         yes', 'healthy    yes'])
    expect(status[6]).toBe(`endpoint   ${CLOUD_VETH_IP}:${CLOUD_WG_PORT}`)

    const start = await cliIn(gatewayNs, ['start', '--config', configFile])
    expect(start.code).toBe(1)
    expect(start.lines.filter((line) => line.startsWith('edge-gateway: '))).toEqual([
      `edge-gateway: Interface ${gatewayInterface} already exists; bring it down first (\`edge-gateway vpn down\`) or choose another vpn.interfaceName [VPN_ERR_INTERFACE_EXISTS]`,
    ])
    expect(await hasLink(gatewayNs, gatewayInterface)).toBe(true)

    const down = await cliIn(gatewayNs, ['vpn', 'down', '--config', configFile])
    expect(down).toEqual({ code: 0, lines: [`tunnel ${gatewayInterface} down`] })
    expect(await hasLink(gatewayNs, gatewayInterface)).toBe(false)
    await eventually('wireguard-go to exit', 10_000, async () =>
      (await lab.pids(gatewayNs)).length === 0 ? true : undefined,
    )
  }, 120_000)

  it('a start that cannot record its tunnel owner fails before making the tunnel, and exits', async () => {
    // The state folder cannot take the owner record (a full or read-only disk, here a folder in
    // its place): before, the tunnel was up when that failed, and its wireguard-go kept the
    // failed gateway running, holding the tunnel.
    const owner = join(dir!, 'state', 'vpn', `${gatewayInterface}.owner`)
    await mkdir(owner, { recursive: true })
    try {
      const start = await cliIn(gatewayNs, ['start', '--config', configFile])
      expect(start.code).toBe(1)
      expect(start.lines.filter((line) => line.startsWith('edge-gateway: '))).toEqual([
        expect.stringMatching(/EISDIR/),
      ])
      expect(start.lines.some((line) => line.includes('wireguard tunnel up'))).toBe(false)
      expect(await hasLink(gatewayNs, gatewayInterface)).toBe(false)
      expect(await lab.pids(gatewayNs)).toEqual([])
    } finally {
      await rm(owner, { recursive: true, force: true })
    }
  }, 120_000)

  it('a start that fails after the tunnel came up removes the tunnel again', async () => {
    // The LAN port is taken, so start fails after the tunnel and the bridge are up.
    const squatter = await startEchoServer(lab, gatewayNs, '127.0.0.1', LAN_PORT)
    try {
      const start = await cliIn(gatewayNs, ['start', '--config', configFile])
      expect(start.code).toBe(1)
      const log = start.lines.flatMap((line) => {
        try {
          return [JSON.parse(line) as LogLine]
        } catch {
          return []
        }
      })
      expect(log.map((l) => l.msg)).toEqual(
        expect.arrayContaining(['wireguard tunnel up', 'wireguard tunnel down']),
      )
      // stdout (logs) and stderr (the error) arrive in either order.
      const fatal = start.lines.filter((line) => line.startsWith('edge-gateway: '))
      expect(fatal, start.lines.join('\n')).toHaveLength(1)
      expect(fatal[0]).toMatch(/EADDRINUSE/)
      expect(log.at(-1)?.msg).toBe('wireguard tunnel down')
      expect(await hasLink(gatewayNs, gatewayInterface)).toBe(false)
      expect(await lab.pids(gatewayNs)).toEqual([squatter.pid])
    } finally {
      await squatter.stop()
    }
  }, 120_000)
})
