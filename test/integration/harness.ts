import { chmod, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { expect } from 'vitest'
import { stringify } from 'yaml'
import type { DeadLetterInfo } from '../../bridge/dead-letter/inspect.js'
import { type EdgeGateway, startEdgeGateway } from '../../cli/app.js'
import { type ConfigInput, loadConfig } from '../../config/index.js'
import { createLogger } from '../../core/logger.js'
import { hashPassword } from '../../gateway/index.js'
import { type LabPki, writeSecretFile } from '../../pki/index.js'
import { runCli } from '../cli/run-cli.js'
import { type CloudMosquitto, startLabCloud } from '../helpers/mosquitto.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'

export const GATEWAY_ID = 'gw-test'
export const PSK_DEVICE = { id: 'psk-dev', identity: 'psk-dev', keyHex: '1f2e3d4c5b6a79880716253443526170' }
export const PASSWORD_DEVICE = {
  id: 'pass-dev',
  username: 'pass-dev',
  password: 'correct horse battery staple',
}
export const CLOUD_PREFIX = `gateways/${GATEWAY_ID}/devices/`

/** Collects the gateway's JSON log lines so tests can assert on security events. */
export class LogCapture extends Writable {
  readonly records: Array<Record<string, unknown>> = []

  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim()) this.records.push(JSON.parse(line) as Record<string, unknown>)
    }
    done()
  }

  events(name: string): Array<Record<string, unknown>> {
    return this.records.filter((r) => r.event === name)
  }

  /** Waits (bounded) until a record matches. */
  async waitFor(
    match: (r: Record<string, unknown>) => boolean,
    timeoutMs = 10_000,
  ): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const found = this.records.find(match)
      if (found) return found
      if (Date.now() > deadline) {
        const tail = this.records.slice(-10).map((r) => JSON.stringify(r))
        throw new Error(`no matching log record within ${timeoutMs} ms; last records:\n${tail.join('\n')}`)
      }
      await new Promise((r) => setTimeout(r, 25))
    }
  }
}

export interface StackOptions {
  /** Config overrides merged into the cloud section. */
  cloud?: Partial<NonNullable<ConfigInput['cloud']>>
  /** Use this PKI for the gateway's client certificate instead of the cloud's. */
  gatewayPki?: LabPki
  /** Start mosquitto with persistence (to keep persistent sessions across a restart). */
  persistence?: boolean
  /** More mosquitto.conf lines for the cloud broker (for example `max_queued_messages 0`). */
  cloudConfig?: string[]
  /** Lockout settings; by default high enough that tests full of deliberate failures are not locked out. */
  lockout?: { maxFailures?: number; windowSeconds?: number; lockSeconds?: number; maxEntries?: number }
  /** A `policies` section for the config. */
  policies?: ConfigInput['policies']
  /** More devices, beside the PSK and the password device. */
  devices?: NonNullable<ConfigInput['devices']>
  /** Other `lan` settings (payload limits). */
  lan?: {
    payload?: NonNullable<ConfigInput['lan']>['payload']
    retained?: NonNullable<ConfigInput['lan']>['retained']
    deviceRate?: NonNullable<ConfigInput['lan']>['deviceRate']
    maxConnectionsPerDevice?: number
    sessions?: { maxPerClient?: number; maxBytes?: number }
  }
  /** Payload protection per topic (`lan.protection`). */
  protection?: NonNullable<ConfigInput['lan']>['protection']
  /** Mosquitto files used directly. */
  mosquitto?: ConfigInput['mosquitto']
  /** Runs in the stack's folder before the gateway starts (the state folder is `<dir>/state`). */
  beforeStart?: (dir: string) => Promise<void>
  /** A `vpn` section (for example one watching a tunnel the system manages). */
  vpn?: ConfigInput['vpn']
  /** More listeners (for example a `tls` one), beside plain and PSK. */
  listeners?: NonNullable<ConfigInput['lan']>['listeners']
}

/**
 * A real stack on loopback: a lab PKI, mosquitto as the cloud broker with
 * `require_certificate true`, and the gateway started from a config file
 * through the same path as `edge-gateway start`.
 */
export class Stack {
  private constructor(
    readonly dir: string,
    readonly pki: LabPki,
    readonly cloud: CloudMosquitto,
    public gateway: EdgeGateway,
    readonly logs: LogCapture,
    /** The config file the gateway was started from (tests edit it and reload). */
    readonly configFile: string,
  ) {}

  static async start(options: StackOptions = {}): Promise<Stack> {
    const dir = await makeTempDir('edge-gw-it-')
    // The gateway's client certificate names the gateway: consumers check it against the key binding.
    const { pki, cloud } = await startLabCloud(
      dir,
      {
        persistence: options.persistence ?? false,
        ...(options.cloudConfig && { extraConfig: options.cloudConfig }),
      },
      GATEWAY_ID,
    )
    const gatewayPki = options.gatewayPki ?? pki
    const pskFile = join(dir, 'keys', 'psk-dev.psk')
    await writeSecretFile(pskFile, `${PSK_DEVICE.keyHex}\n`)
    const config: ConfigInput = {
      gateway: { id: GATEWAY_ID, stateDir: 'state' },
      log: { level: 'debug' },
      lan: {
        listeners: [
          { name: 'plain', type: 'tcp', host: '127.0.0.1', port: 0 },
          { name: 'psk', type: 'tls-psk', host: '127.0.0.1', port: 0 },
          ...(options.listeners ?? []),
        ],
        lockout: { maxFailures: 1000, ...options.lockout },
        ...(options.protection && { protection: options.protection }),
        ...(options.lan?.payload && { payload: options.lan.payload }),
        ...(options.lan?.retained && { retained: options.lan.retained }),
        ...(options.lan?.deviceRate && { deviceRate: options.lan.deviceRate }),
        ...(options.lan?.maxConnectionsPerDevice && {
          maxConnectionsPerDevice: options.lan.maxConnectionsPerDevice,
        }),
        ...(options.lan?.sessions && { sessions: options.lan.sessions }),
      },
      ...(options.policies && { policies: options.policies }),
      ...(options.mosquitto && { mosquitto: options.mosquitto }),
      ...(options.vpn && { vpn: options.vpn }),
      devices: [
        {
          id: PSK_DEVICE.id,
          psk: { identity: PSK_DEVICE.identity, keyFile: pskFile },
          clientIds: [`${PSK_DEVICE.id}*`],
        },
        {
          id: PASSWORD_DEVICE.id,
          username: PASSWORD_DEVICE.username,
          passwordHash: await hashPassword(PASSWORD_DEVICE.password),
          clientIds: [`${PASSWORD_DEVICE.id}*`],
        },
        ...(options.devices ?? []),
      ],
      cloud: {
        host: '127.0.0.1',
        port: cloud.port,
        servername: 'localhost',
        caFile: pki.caFile,
        certFile: gatewayPki.clientCertFile,
        keyFile: gatewayPki.clientKeyFile,
        keepaliveSeconds: 5,
        reconnect: { initialDelayMs: 100, maxDelayMs: 1000 },
        topics: [{ local: 'devices/', cloud: CLOUD_PREFIX }],
        ...options.cloud,
      },
    }
    const configFile = join(dir, 'gateway.yaml')
    await writeFile(configFile, stringify(config), { mode: 0o600 })
    await chmod(configFile, 0o600)
    await options.beforeStart?.(dir)
    const logs = new LogCapture()
    const gateway = await startEdgeGateway(
      await loadConfig(configFile),
      createLogger({ level: 'debug', destination: logs }),
    )
    return new Stack(dir, pki, cloud, gateway, logs, configFile)
  }

  port(type: 'tcp' | 'tls-psk' | 'tls'): number {
    const listener = this.gateway.lan.listener(type)
    if (!listener) throw new Error(`no ${type} listener`)
    return listener.port
  }

  /** Cloud-side mTLS options for mosquitto_sub / mosquitto_pub. */
  cloudClient(): { host: string; port: number; caFile: string; certFile: string; keyFile: string } {
    return {
      host: '127.0.0.1',
      port: this.cloud.port,
      caFile: this.pki.caFile,
      certFile: this.pki.clientCertFile,
      keyFile: this.pki.clientKeyFile,
    }
  }

  async waitLinkUp(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (this.gateway.bridge.link.state$.value.status !== 'connected') {
      if (Date.now() > deadline)
        throw new Error(`cloud link not up: ${JSON.stringify(this.gateway.bridge.status())}`)
      await new Promise((r) => setTimeout(r, 25))
    }
  }

  /**
   * Stops the gateway and starts it again from the same config and state folder (a restart, not a
   * crash); `whileStopped` runs in between (for example to damage the queue files).
   */
  async restartGateway(whileStopped?: () => Promise<void>): Promise<void> {
    await this.gateway.close()
    await whileStopped?.()
    this.gateway = await startEdgeGateway(
      await loadConfig(this.configFile),
      createLogger({ level: 'debug', destination: this.logs }),
    )
  }

  async stop(): Promise<void> {
    await this.gateway.close().catch(() => undefined)
    await this.cloud.stop().catch(() => undefined)
    await removeDir(this.dir)
  }
}

/** Polls a condition (bounded); throws with the message when it does not come true in time. */
export async function waitUntil(
  condition: () => boolean,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

/** `deadletter list --json` of the stack's gateway, through the built CLI. */
export async function listLetters(stack: Stack): Promise<DeadLetterInfo[]> {
  const result = await runCli(['deadletter', 'list', '-c', stack.configFile, '--json'])
  expect(result.code, result.stderr).toBe(0)
  return (JSON.parse(result.stdout) as { letters: DeadLetterInfo[] }).letters
}
