import { readFile } from 'node:fs/promises'
import { isIP } from 'node:net'
import { checkServerIdentity, type PeerCertificate } from 'node:tls'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { BehaviorSubject } from 'rxjs'
import type { CloudConfig } from '../config/index.js'
import type { Logger } from '../core/logger.js'
import type { Metrics } from '../core/metrics.js'
import { Backoff } from './backoff.js'
import { CloudSession } from './cloud-session.js'
import { BridgeError } from './errors.js'
import { describeLinkError, type LinkPhase } from './link-errors.js'

/**
 * TLS name options for the cloud broker's `servername` (or host): a DNS name is sent as SNI and
 * checked against the certificate; an IP address is never sent as SNI (RFC 6066 forbids it, and
 * Node warns with DEP0123) but is still what the certificate must name.
 */
export function tlsNameOptions(
  host: string,
  servername: string | undefined,
):
  | { servername: string }
  | { checkServerIdentity: (host: string, cert: PeerCertificate) => Error | undefined } {
  const name = servername ?? host
  if (isIP(name) === 0) return { servername: name }
  return { checkServerIdentity: (_host, cert) => checkServerIdentity(name, cert) }
}

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
    metrics.declare('cloud_connect_attempts_total')
    metrics.declare('cloud_disconnects_total')
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
    const options: IClientOptions & { minVersion: string } & ReturnType<typeof tlsNameOptions> = {
      protocol: 'mqtts',
      host: this.config.host,
      port: this.config.port,
      ...tlsNameOptions(this.config.host, this.config.servername),
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
      // No 65,536-Buffer number cache in the MQTT codec (shared with aedes): see gateway/mqtt-codec.ts.
      writeCache: false,
      ...(this.hooks.will && { will: { ...this.hooks.will(), qos: 1 as const } }),
    }
    const client = mqtt.connect(options)
    this.client = client
    let session: CloudSession | undefined
    let closed = false
    // The last error mqtt.js reported for this connection; logged once, when it closes.
    let failure: (Error & { code?: string | number }) | undefined

    client.on('connect', (connack) => {
      this.backoff.reset()
      this.attempt = 0
      const stream = client.stream as { setNoDelay?: (on: boolean) => void }
      stream.setNoDelay?.(true)
      session = new CloudSession(
        client,
        this.config.protocolVersion === 5,
        connack.properties?.maximumPacketSize,
      )
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
      failure = err
      this.logger.debug(
        { cloud: this.target, err: err.message, code: (err as { code?: unknown }).code },
        'cloud connection error (logged with its cause when the connection closes)',
      )
    })
    client.on('close', () => {
      if (closed) return
      closed = true
      const established = session !== undefined
      const phase: LinkPhase = established ? 'established' : 'set-up'
      if (established && !this.stopped) {
        this.metrics.increment('cloud_disconnects_total')
        this.session$.next(null)
      }
      // Fail whatever this client still holds; the queue re-sends it on the next session.
      client.end(true)
      if (this.stopped) return
      const delay = this.backoff.next()
      const cause = failure
        ? describeLinkError(failure, this.target, phase)
        : `the cloud broker at ${this.target} closed the connection ${established ? 'after set-up' : 'during set-up'}`
      this.state$.next({ status: 'waiting', retryInMs: delay, cause })
      // One line per failure: what went wrong, and when the next attempt is.
      this.logger.warn(
        {
          cloud: this.target,
          ...(failure && { err: failure.message, code: failure.code }),
          phase,
          retryInMs: delay,
          ...(!established && { attempt: this.attempt }),
        },
        established
          ? `cloud link down: ${cause}; reconnecting in ${delay} ms`
          : `${cause}; retrying in ${delay} ms (attempt ${this.attempt} failed)`,
      )
      this.timer = setTimeout(() => void this.reconnect(tls), delay)
    })
  }

  /**
   * The next attempt, with `cloud.caFile` read again: a CA bundle replaced on disk (the old CA and
   * the new one together, while the broker changes its certificate) verifies the broker from the
   * next connection on, without a restart. A file that cannot be read now keeps the last one read.
   * The client certificate and key stay those read at start: the key binding is made with them.
   */
  private async reconnect(tls: TlsMaterial): Promise<void> {
    let ca = tls.ca
    try {
      ca = await readFile(this.config.caFile)
    } catch (err) {
      this.logger.warn(
        { cloud: this.target, caFile: this.config.caFile, err: (err as Error).message },
        'cannot read cloud.caFile again: connecting with the CA bundle read before',
      )
    }
    if (!ca.equals(tls.ca)) {
      this.logger.info(
        { cloud: this.target, caFile: this.config.caFile },
        'cloud.caFile changed: the broker is verified with the new CA bundle from this connection on',
      )
    }
    this.connect({ ...tls, ca })
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
