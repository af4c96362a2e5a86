import type { ChildProcess } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { expect } from 'vitest'
import { stringify } from 'yaml'
import { hashPassword } from '../../gateway/index.js'
import { type LabPki, mintLabPki } from '../../pki/index.js'
import { spawnCli } from '../cli/run-cli.js'
import { CloudConsumer, summaryLine } from '../helpers/cloud-consumer.js'
import { DeviceLoad, sentBy } from '../helpers/device-load.js'
import { CloudMosquitto } from '../helpers/mosquitto.js'
import { freePort } from '../helpers/ports.js'
import { exitOf, onLines, signalPid, terminate } from '../helpers/processes.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { expectLossless } from './expect-lossless.js'

/** The `uplink queue opened` log line of one start (cli/app.ts). */
export interface QueueOpened {
  records: number
  held: number
  tornBytes: number
  corrupted: number
}

export interface KillRoundsOptions {
  kills: number
  /** Names the topics and payloads of this run. */
  label: string
  /** Messages per second offered over all connections; Infinity for a flood. */
  rate: number
  connections: number
  /** QoS 1 messages awaiting PUBACK per device connection. */
  window: number
  /** Freeze the cloud broker (SIGSTOP) at a random moment before each kill, until the gateway is dead. */
  throttleCloud: boolean
  /** Each round is killed at a random moment from killFromMs to killFromMs + killSpanMs after the devices start. */
  killFromMs: number
  killSpanMs: number
}

export interface KillRoundsResult {
  sent: number
  acknowledged: Set<string>
  /** Time the devices were offering, over all rounds (ms). */
  offeringMs: number
  /** What the queue recovered at each start: the first, one after each kill, and the final one. */
  recoveries: QueueOpened[]
  /** Messages acknowledged per second in each round (from the devices' start to the kill). */
  roundRates: number[]
  /** Messages acknowledged in each round. */
  roundAcknowledged: number[]
  consumer: CloudConsumer
}

const QUIET_MS = 300

/**
 * A real cloud broker (mosquitto, mutual TLS) and the gateway as a process
 * (`edge-gateway start` from dist) that tests kill with SIGKILL and start again.
 */
export class KillBench {
  gateway: ChildProcess | undefined

  private constructor(
    readonly dir: string,
    readonly pki: LabPki,
    readonly cloud: CloudMosquitto,
    readonly configFile: string,
    readonly lanPort: number,
  ) {}

  /** `queue`: settings of `cloud.queue` beside the defaults (e.g. `{ durability: 'write' }`). */
  static async start(queue: Record<string, unknown> = {}): Promise<KillBench> {
    const dir = await makeTempDir('edge-gw-kill-')
    const pki = await mintLabPki(join(dir, 'pki'))
    const cloud = await CloudMosquitto.start({
      dir,
      caFile: pki.caFile,
      certFile: pki.serverCertFile,
      keyFile: pki.serverKeyFile,
      // Unlimited queueing for the consumer: what the cloud broker itself drops is not the gateway's loss.
      extraConfig: ['max_queued_messages 0'],
    })
    const lanPort = await freePort()
    const configFile = join(dir, 'gateway.yaml')
    const config = {
      gateway: { id: 'gw-kill', stateDir: join(dir, 'state') },
      log: { level: 'info', pretty: false },
      // One device floods over several connections: its rate (lan.deviceRate) is raised.
      lan: {
        listeners: [{ type: 'tcp', host: '127.0.0.1', port: lanPort }],
        deviceRate: { messagesPerSecond: 1_000_000, burst: 1_000_000 },
      },
      devices: [
        { id: 'dev', username: 'dev', passwordHash: await hashPassword('kill-test'), clientIds: ['dev-*'] },
      ],
      cloud: {
        host: '127.0.0.1',
        port: cloud.port,
        servername: 'localhost',
        caFile: pki.caFile,
        certFile: pki.clientCertFile,
        keyFile: pki.clientKeyFile,
        reconnect: { initialDelayMs: 100, maxDelayMs: 1000 },
        topics: [{ local: 'devices/', cloud: 'gw/' }],
        queue,
      },
    }
    await writeFile(configFile, stringify(config), { mode: 0o600 })
    return new KillBench(dir, pki, cloud, configFile, lanPort)
  }

  async stop(): Promise<void> {
    if (this.gateway) await terminate(this.gateway)
    this.cloud.resume()
    await this.cloud.stop()
    await removeDir(this.dir)
  }

  /** Starts `edge-gateway start`; resolves with what its queue recovered once it logs that it started. */
  async startGateway(): Promise<QueueOpened> {
    const child = spawnCli(['start', '--config', this.configFile])
    this.gateway = child
    const output: string[] = []
    let opened: QueueOpened | undefined
    let started = false
    onLines(child.stderr, (line) => output.push(line))
    onLines(child.stdout, (line) => {
      output.push(line)
      const record = JSON.parse(line) as Record<string, unknown> & QueueOpened
      if (typeof record.msg !== 'string') return
      if (record.msg.startsWith('uplink queue opened')) opened = record
      if (record.msg === 'edge gateway started') started = true
    })
    const deadline = Date.now() + 30_000
    while (!started) {
      if (child.exitCode !== null || Date.now() > deadline)
        throw new Error(`gateway did not start:\n${output.slice(-20).join('\n')}`)
      await new Promise((r) => setTimeout(r, 20))
    }
    if (!opened) throw new Error(`no "uplink queue opened" line:\n${output.slice(-20).join('\n')}`)
    return opened
  }

  /**
   * `kills` rounds of: start the gateway, devices publish, SIGKILL at a random
   * moment; then one more start to deliver what is left. Each gateway run is
   * an epoch of the consumer, so copies can be told to come from a kill.
   */
  async killRounds(o: KillRoundsOptions): Promise<KillRoundsResult> {
    const consumer = await CloudConsumer.start({
      host: '127.0.0.1',
      port: this.cloud.port,
      caFile: this.pki.caFile,
      certFile: this.pki.clientCertFile,
      keyFile: this.pki.clientKeyFile,
      topic: `gw/dev/${o.label}/#`,
      clientId: `consumer-${o.label}`,
    })
    const out: KillRoundsResult = {
      sent: 0,
      acknowledged: new Set(),
      offeringMs: 0,
      recoveries: [],
      roundRates: [],
      roundAcknowledged: [],
      consumer,
    }
    for (let round = 0; round < o.kills; round++) {
      consumer.epoch = round
      out.recoveries.push(await this.startGateway())
      const load = await DeviceLoad.connect({
        port: this.lanPort,
        username: 'dev',
        password: 'kill-test',
        clientIdPrefix: `dev-${o.label}-${round}`,
        connections: o.connections,
        topicPrefix: `devices/dev/${o.label}`,
        payloadPrefix: `${o.label}-r${round}`,
        window: o.window,
        rate: o.rate,
        durationMs: 20_000,
      })
      const killAt = o.killFromMs + Math.floor(Math.random() * o.killSpanMs)
      const pauseAt = o.throttleCloud ? 200 + Math.floor(Math.random() * (killAt - 400)) : Infinity
      let paused = false
      const victim = this.gateway
      const result = await load.run((_acked, elapsed) => {
        if (!paused && elapsed >= pauseAt) {
          this.cloud.pause()
          paused = true
        }
        if (elapsed >= killAt) signalPid(victim?.pid, 'SIGKILL')
      })
      await load.close()
      if (victim) await exitOf(victim)
      if (paused) this.cloud.resume()
      // What the dead gateway had written to its socket still reaches the consumer (the broker reads it
      // on SIGCONT): let it arrive in this epoch before the next run starts re-sending.
      await consumer.waitQuiet(QUIET_MS, 5_000)
      // Every connection ended with the kill, not with the run's time bound: the kill came mid-stream.
      expect(result.closed, `round ${round}: device connections closed by the kill`).toBe(o.connections)
      out.sent += result.sent
      out.offeringMs += result.elapsedMs
      out.roundRates.push(Math.round((result.acknowledged.size * 1000) / result.elapsedMs))
      out.roundAcknowledged.push(result.acknowledged.size)
      for (const p of result.acknowledged) out.acknowledged.add(p)
    }
    consumer.epoch = o.kills
    out.recoveries.push(await this.startGateway())
    return out
  }
}

/** Waits for delivery, prints the summary line and asserts the acceptance bar of a kill run. */
export async function verifyKillRounds(
  r: KillRoundsResult,
  o: KillRoundsOptions,
  what: string,
): Promise<void> {
  const { kills } = o
  const { consumer, acknowledged, recoveries } = r
  const missing = await consumer.waitForAll(acknowledged, 90_000)
  const t = consumer.tally(r.sent, acknowledged, sentBy(o.label))
  const restarts = recoveries.slice(1)
  console.log(
    summaryLine(`SIGKILL x${kills}, ${what}`, t, {
      'acknowledged rate': `${Math.round((acknowledged.size * 1000) / r.offeringMs)}/s`,
      'per round (min/median/max)': spread(r.roundRates),
      'held at each restart': restarts.map((q) => q.held).join('/'),
      'torn bytes cut': restarts.reduce((n, q) => n + q.tornBytes, 0),
      'corrupted skipped': restarts.reduce((n, q) => n + q.corrupted, 0),
    }),
  )
  await consumer.stop()
  expect(missing).toBe(0)
  expectLossless(t)
  expect(consumer.duplicatesWithinEpoch().slice(0, 20), 'copies within one gateway run').toEqual([])
  // The gateway started again after every kill, and each time its queue opened and said what it recovered.
  expect(recoveries).toHaveLength(kills + 1)
  // The first start found an empty queue; with the cloud frozen before each kill, every start after
  // a kill found acknowledged messages still held (else the kill proved nothing about recovery).
  expect(recoveries[0]).toMatchObject({ records: 0, held: 0 })
  if (o.throttleCloud) {
    const held = recoveries.slice(1).map((q) => q.held)
    expect(
      held.filter((h) => h === 0),
      `held at each restart: ${held.join('/')}`,
    ).toEqual([])
  }
}

function spread(values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b)
  return `${sorted[0]}/${sorted[Math.floor(sorted.length / 2)]}/${sorted.at(-1)}`
}
