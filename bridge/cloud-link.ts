import { readFile } from 'node:fs/promises'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { BehaviorSubject } from 'rxjs'
import type { CloudConfig } from '../config/index.js'
import type { Logger } from '../core/logger.js'
import type { Metrics } from '../core/metrics.js'
import { Backoff } from './backoff.js'
import { CloudSession } from './cloud-session.js'
import { BridgeError } from './errors.js'
import { describeLinkError } from './link-errors.js'

export type LinkState =
  | { status: 'stopped' }
  | { status: 'connecting'; attempt: number }
  | { status: 'connected'; since: number }
  | { status: 'waiting'; retryInMs: number; cause: string }

/** What the bridge adds to each connection: its Will, its subscriptions, and what to do on messages. */
export interface LinkHooks {
  /** Made fresh for each connection (it is signed, with a timestamp). */
  will?: () => { topic: string; payload: Buffer; retain: boolean }
  /** Subscribed at QoS 1 on every connection. */
  subscriptions?: readonly string[]
  onMessage?: (topic: string, payload: Buffer) => void
  /** Runs when a session is up, before it is handed to the uplink. */
  onSession?: (session: CloudSession) => void
}

interface TlsMaterial {
  ca: Buffer
  cert: Buffer
  key: Buffer
}

/**
 * The gateway's connection to the cloud broker: MQTT 5 (or 3.1.1) over mutual TLS with
 * certificate checks always on. Each connection is a fresh mqtt.js client with
 * automatic reconnect off; this class reconnects with capped, jittered backoff
 * and publishes the live session (or null) on `session$`.
 */
export class CloudLink {
  readonly session$ = new BehaviorSubject<CloudSession | null>(null)
  readonly state$ = new BehaviorSubject<LinkState>({ status: 'stopped' })
  private client: MqttClient | undefined
  private timer: NodeJS.Timeout | undefined
  private stopped = true
  private attempt = 0
  private lastCause: string | undefined
  private readonly backoff: Backoff
  private readonly target: string

  constructor(
    private readonly config: CloudConfig,
    private readonly clientId: string,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
    private readonly hooks: LinkHooks = {},
  ) {
    this.backoff = new Backoff(config.reconnect.initialDelayMs, config.reconnect.maxDelayMs)
    this.target = `${config.host}:${config.port}`
  }

  async start(): Promise<void> {
    const tls = await this.readTlsMaterial()
    this.stopped = false
    this.connect(tls)
  }

  private async readTlsMaterial(): Promise<TlsMaterial> {
    const read = async (label: string, file: string) => {
      try {
        return await readFile(file)
      } catch (err) {
        throw new BridgeError('BRIDGE_ERR_TLS_FILES', `cannot read ${label} ${file}`, { cause: err })
      }
    }
    return {
      ca: await read('cloud.caFile', this.config.caFile),
      cert: await read('cloud.certFile', this.config.certFile),
      key: await read('cloud.keyFile', this.config.keyFile),
    }
  }

  private connect(tls: TlsMaterial): void {
    if (this.stopped) return
    this.attempt++
    this.metrics.increment('cloud_connect_attempts_total')
    this.state$.next({ status: 'connecting', attempt: this.attempt })
    const options: IClientOptions & { minVersion: string } = {
      protocol: 'mqtts',
      host: this.config.host,
      port: this.config.port,
      servername: this.config.servername ?? this.config.host,
      ca: tls.ca,
      cert: tls.cert,
      key: tls.key,
      // Never configurable: the cloud link is useless if anyone can pose as the broker.
      rejectUnauthorized: true,
      minVersion: this.config.minVersion,
      protocolVersion: this.config.protocolVersion,
      clientId: this.clientId,
      clean: true,
      keepalive: this.config.keepaliveSeconds,
      connectTimeout: this.config.connectTimeoutMs,
      reconnectPeriod: 0,
      queueQoSZero: false,
      ...(this.hooks.will && { will: { ...this.hooks.will(), qos: 1 as const } }),
    }
    const client = mqtt.connect(options)
    this.client = client
    let session: CloudSession | undefined
    let closed = false

    client.on('connect', () => {
      this.backoff.reset()
      this.attempt = 0
      this.lastCause = undefined
      const stream = client.stream as { setNoDelay?: (on: boolean) => void }
      stream.setNoDelay?.(true)
      session = new CloudSession(client, this.config.protocolVersion === 5)
      const subscriptions = this.hooks.subscriptions ?? []
      if (subscriptions.length > 0) {
        client.subscribe([...subscriptions], { qos: 1 }, (err, granted) => {
          const refused = (granted ?? []).filter((g) => g.qos >= 0x80).map((g) => g.topic)
          if (err || refused.length > 0) {
            this.logger.error(
              { cloud: this.target, err: err?.message, refused },
              'cloud broker refused the downlink subscriptions; commands will not arrive',
            )
          }
        })
      }
      this.hooks.onSession?.(session)
      this.logger.info({ cloud: this.target, clientId: this.clientId }, 'cloud link up')
      this.state$.next({ status: 'connected', since: Date.now() })
      this.session$.next(session ?? null)
    })
    client.on('message', (topic, payload) => this.hooks.onMessage?.(topic, payload))
    client.on('error', (err) => {
      this.lastCause = describeLinkError(err, this.target)
      this.logger.warn(
        { cloud: this.target, err: err.message, code: (err as { code?: unknown }).code },
        this.lastCause,
      )
    })
    client.on('close', () => {
      if (closed) return
      closed = true
      if (session && !this.stopped) {
        this.metrics.increment('cloud_disconnects_total')
        this.logger.warn({ cloud: this.target }, 'cloud link down')
        this.session$.next(null)
      }
      // Fail whatever this client still holds; the queue re-sends it on the next session.
      client.end(true)
      if (this.stopped) return
      const delay = this.backoff.next()
      const cause = this.lastCause ?? `the cloud broker at ${this.target} closed the connection`
      this.state$.next({ status: 'waiting', retryInMs: delay, cause })
      this.logger.info(
        { cloud: this.target, retryInMs: delay, attempt: this.attempt },
        'cloud link: retrying',
      )
      this.timer = setTimeout(() => this.connect(tls), delay)
    })
  }

  async stop(): Promise<void> {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    const client = this.client
    this.client = undefined
    this.session$.next(null)
    this.state$.next({ status: 'stopped' })
    if (!client) return
    // A clean DISCONNECT when connected, so the broker discards the Will ("offline, connection lost");
    // forced after 2 s, or at once when the link is already down.
    if (client.connected) {
      const timer = setTimeout(() => client.end(true), 2000)
      await client.endAsync(false).catch(() => undefined)
      clearTimeout(timer)
    }
    await client.endAsync(true).catch(() => undefined)
  }
}
