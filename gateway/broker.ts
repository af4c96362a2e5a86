import { Aedes, type Client } from 'aedes'
import type { GatewayConfig } from '../config/index.js'
import { trustedNow } from '../core/clock-floor.js'
import { LogLimiter } from '../core/log-limiter.js'
import type { Logger } from '../core/logger.js'
import { type Metrics, series } from '../core/metrics.js'
import type { SecurityEvents } from '../core/security-events.js'
import { seal } from '../crypto/encrypt0.js'
import { encodeKeyUpdate, type KeyUpdate } from '../crypto/key-update.js'
import type { DerivedContext } from '../crypto/types.js'
import { isValidTopicName } from '../policies/topic-filter.js'
import { AccessControl, type AccessSnapshot } from './access-control.js'
import { defaultScryptConcurrency, scryptSlots } from './auth/password.js'
import { closeReasonOf, setCloseReason } from './close-reason.js'
import { principalFor, sessionOf, transportOf } from './connection-context.js'
import { isDropped } from './dropped.js'
import { createAuthenticate, DeviceConnections } from './hooks/authenticate.js'
import { createAuthorizeForward } from './hooks/authorize-forward.js'
import { createAuthorizePublish } from './hooks/authorize-publish.js'
import { createAuthorizeSubscribe, subscriptionsRemoved } from './hooks/authorize-subscribe.js'
import { createPreConnect } from './hooks/pre-connect.js'
import { Admission } from './listeners/admission.js'
import { type Listener, startListener } from './listeners/index.js'
import { useUncachedMqttNumbers } from './mqtt-codec.js'
import { OPEN_FAILURES } from './protection/payload-opener.js'
import { createProtectionRuntime, type ProtectionRuntime } from './protection/runtime.js'
import { createAccept, protocolErrorSeries } from './protocol/index.js'
import type { Device } from './registry.js'
import { applyAccess, type ReloadReport } from './reload.js'
import { RetainedLimit } from './retained-limit.js'
import { boundSessions, SessionBudget } from './session-budget.js'
import type { UplinkSink } from './uplink.js'

/** What aedes says when a connection sends no CONNECT within its connectTimeout. */
const CONNECT_TIMEOUT_MESSAGE = 'connect did not arrive in time'
/** Log lines per reason and address (or device) each 10 s for disconnects anyone can cause. */
const LINES_PER_KEY = 20

export interface LanGatewayOptions {
  lan: GatewayConfig['lan']
  /** Where the replay windows and the gateway's sequence number are kept. */
  stateDir: string
  access: AccessSnapshot
  uplink: UplinkSink
  logger: Logger
  metrics: Metrics
  security: SecurityEvents
}

/**
 * scrypt runs at once: as configured, else the default for the hashes of `access` (password.ts);
 * and the memory they may ask for together.
 */
function sizeScryptSlots(checks: PasswordChecks, access: AccessSnapshot): void {
  scryptSlots.resize(
    checks.concurrency ?? defaultScryptConcurrency(undefined, access.slowPasswordHashes ?? true),
    checks.memoryMiB * 1024 * 1024,
  )
}

/** lan.passwordChecks: concurrency unset is the default for the hashes in force. */
type PasswordChecks = Pick<LanGatewayOptions['lan']['passwordChecks'], 'concurrency' | 'memoryMiB'>

/** A configured device as the status page shows it. */
export interface DeviceView {
  id: string
  /** How it may authenticate: `psk`, `password`, `token` (one-time CONNECT token), `certificate`. */
  credentials: string[]
  connections: Array<{ clientId: string; listener: string; remoteAddress: string }>
  /** PUBLISH packets the broker accepted from it since the gateway started (not those refused). */
  published: number
  lastSeen?: number
}

function credentialsOf(d: Device): string[] {
  const out: string[] = []
  if (d.pskIdentity !== undefined) out.push('psk')
  if (d.password !== undefined) out.push('password')
  if (d.payload !== undefined && d.password === undefined) out.push('token')
  if (d.certificateCommonName !== undefined) out.push('certificate')
  return out
}

/** The LAN side: one aedes broker with our hooks, behind one listener per configured transport. */
export class LanGateway {
  private constructor(
    readonly broker: Aedes,
    readonly listeners: ReadonlyArray<Listener>,
    readonly access: AccessControl,
    private readonly protection: ProtectionRuntime,
    private readonly security: SecurityEvents,
    private readonly logger: Logger,
    private readonly passwordChecks: PasswordChecks,
    /** Per device id, when its last connection closed. */
    private readonly lastSeen: Map<string, number>,
    /** Per device id, the PUBLISH packets the broker accepted from it since the gateway started. */
    private readonly published: Map<string, number>,
  ) {
    this.schedulePskRetirement()
  }

  /** Fires at the end of the next PSK overlap (psk.previous.until). */
  private pskTimer: NodeJS.Timeout | undefined

  /**
   * Closes the connections made with a PSK identity the device no longer has: one whose overlap
   * (`psk.previous.until`) has ended, or one a reload took away, each a security event
   * (`psk_retired`) with the device. Returns how many it closed.
   */
  private retirePskConnections(now = trustedNow()): number {
    let closed = 0
    for (const client of this.clients()) {
      const identity = transportOf(client).pskIdentity
      const session = sessionOf(client)
      // Being closed already (a device a reload removed): one reason is enough.
      if (identity === undefined || !session || closeReasonOf(client)) continue
      if (this.access.registry.byPsk(identity, now)?.id === session.device.id) continue
      const retired = this.access.registry.pskRetired(identity, now)
      const detail = retired
        ? 'its PSK identity was replaced and the overlap has ended: connect with the new key'
        : 'its PSK identity is no longer configured for the device'
      this.security.report(
        'psk_retired',
        { device: session.device.id, clientId: client.id, pskIdentity: identity },
        detail,
      )
      setCloseReason(client, { reason: 'psk_retired', detail })
      client.close()
      closed++
    }
    return closed
  }

  private schedulePskRetirement(): void {
    clearTimeout(this.pskTimer)
    const next = this.access.registry.nextPskRetirement()
    if (next === undefined) return
    // Checked at least every minute, not once at the end computed now: the wall clock may be
    // stepped forward meanwhile (NTP correcting a Pi's clock after a power cut).
    const delay = Math.min(next - trustedNow() + 1, 60_000)
    this.pskTimer = setTimeout(
      () => {
        this.retirePskConnections()
        this.schedulePskRetirement()
      },
      Math.max(delay, 0),
    )
    this.pskTimer.unref()
  }

  static async start(options: LanGatewayOptions): Promise<LanGateway> {
    const { logger, security, metrics } = options
    useUncachedMqttNumbers()
    const access = new AccessControl(
      options.access,
      options.lan.lockout,
      options.lan.passwordChecks.cacheEntries,
    )
    const passwordChecks = options.lan.passwordChecks
    sizeScryptSlots(passwordChecks, options.access)
    const protection = await createProtectionRuntime(options.lan, options.stateDir, logger)
    const lastSeen = new Map<string, number>()
    const published = new Map<string, number>()
    const retained = new RetainedLimit(options.lan.retained.maxMessages, options.lan.retained.maxBytes)
    const broker = await Aedes.createBroker({
      id: 'edge-gateway',
      // A connection that sends no CONNECT by then is closed (counted as connect_timeout).
      connectTimeout: options.lan.timeouts.connectMs,
      preConnect: createPreConnect({ access }),
      authenticate: createAuthenticate({
        access,
        security,
        logger,
        protection,
        refusalDelayMs: options.lan.lockout.refusalDelayMs,
        connections: new DeviceConnections(options.lan.maxConnectionsPerDevice),
      }),
      authorizePublish: createAuthorizePublish({
        access,
        security,
        logger,
        metrics,
        uplink: options.uplink,
        protection,
        retained,
      }),
      authorizeSubscribe: createAuthorizeSubscribe({
        access,
        security,
        maxSubscriptions: options.lan.maxSubscriptionsPerClient,
      }),
      authorizeForward: createAuthorizeForward({ access, security, metrics, protection }),
    })
    for (const reason of OPEN_FAILURES) metrics.declare(series('payload_rejected_total', { reason }))
    metrics.declare(series('downlink_withheld_total', { reason: 'no_payload_key' }))
    metrics.gauge('lan_connected_clients', () => broker.connectedClients)
    metrics.gauge('lan_lockout_entries', () => access.lockout.size)
    metrics.gauge('lan_verified_passwords', () => access.passwords.size)
    metrics.gauge('lan_password_checks_waiting', () => scryptSlots.queued)
    metrics.gauge('lan_retained_messages', () => retained.messages)
    metrics.gauge('lan_retained_bytes', () => retained.totalBytes)
    const sessions = new SessionBudget(
      options.lan.sessions.maxPerClient,
      options.lan.sessions.maxBytes,
      metrics,
      logger.child({ module: 'sessions' }),
    )
    boundSessions((broker as unknown as { persistence: unknown }).persistence, sessions)
    metrics.gauge('lan_session_bytes', () => sessions.bytes)
    broker.on('clientError', (client, err) => {
      logger.debug(
        { device: sessionOf(client)?.device.id, clientId: client.id, err: err.message },
        'client error',
      )
    })
    const admission = new Admission(options.lan.pendingConnections)
    metrics.gauge('lan_pending_connections', () => admission.pending)
    const accept = createAccept({
      broker,
      admission,
      limits: {
        maxPacketBytes: options.lan.maxPacketBytes,
        maxConnectBytes: options.lan.maxConnectBytes,
        maxOutboundBytes: options.lan.maxOutboundBytes,
      },
      security,
      metrics,
      logger,
    })
    // Lines anyone on the LAN can cause (one per connection): at most LINES_PER_KEY per reason
    // and address (or device) each 10 s; the counters have them all, the next line says how many were left out.
    const lines = new LogLimiter(LINES_PER_KEY, 10_000)
    broker.on('connectionError', (client, err) => {
      // What the protocol guard refuses never gets here: it is counted under its own reason.
      const reason = err.message === CONNECT_TIMEOUT_MESSAGE ? 'connect_timeout' : 'connection_error'
      metrics.increment(protocolErrorSeries(reason))
      const { listener, remoteAddress } = transportOf(client)
      const take = lines.take(`protocol_error\u0000${reason}\u0000${remoteAddress}`)
      if (!take) return
      logger.warn(
        {
          event: 'protocol_error',
          listener,
          remoteAddress,
          reason,
          err: err.message,
          ...(take.suppressed > 0 && { suppressed: take.suppressed }),
        },
        reason === 'connect_timeout'
          ? `no CONNECT within ${options.lan.timeouts.connectMs} ms: connection closed`
          : 'connection closed before CONNECT completed',
      )
    })
    broker.on('publish', (packet, client) => {
      const session = client ? sessionOf(client) : undefined
      // Acknowledged but refused (a dropped denial, a rate limit, a refused payload) is not counted.
      if (session && !isDropped(packet.payload)) {
        published.set(session.device.id, (published.get(session.device.id) ?? 0) + 1)
      }
    })
    broker.on('unsubscribe', (topics, client) => {
      subscriptionsRemoved(client, topics)
      for (const topic of topics) access.subscriberLimits.remove(client.id, topic)
    })
    broker.on('clientDisconnect', (client) => {
      access.subscriberLimits.remove(client.id)
      const session = sessionOf(client)
      if (!session) return
      lastSeen.set(session.device.id, Date.now())
      const closed = closeReasonOf(client)
      if (!closed) {
        logger.info({ device: session.device.id, clientId: client.id }, 'device disconnected')
        return
      }
      const { detail, ...why } = closed
      const take = lines.take(`disconnect\u0000${why.reason}\u0000${session.device.id}`)
      if (!take) return
      logger.warn(
        {
          ...why,
          device: session.device.id,
          clientId: client.id,
          ...(take.suppressed > 0 && { suppressed: take.suppressed }),
        },
        `device disconnected by the gateway: ${detail}`,
      )
    })

    const listeners: Listener[] = []
    const context = {
      broker,
      access,
      logger,
      security,
      accept,
      handshakeMs: options.lan.timeouts.handshakeMs,
      admission,
    }
    try {
      for (const config of options.lan.listeners) listeners.push(await startListener(config, context))
    } catch (err) {
      await Promise.all(listeners.map((l) => l.close()))
      await new Promise<void>((resolve) => broker.close(() => resolve()))
      await protection.close()
      throw err
    }
    const gateway = new LanGateway(
      broker,
      listeners,
      access,
      protection,
      security,
      logger,
      passwordChecks,
      lastSeen,
      published,
    )
    for (const l of listeners) {
      metrics.gauge(
        series('lan_listener_connections', { listener: l.name, type: l.type }),
        () => gateway.clients().filter((c) => transportOf(c).listener === l.name).length,
      )
    }
    return gateway
  }

  /**
   * Every configured device for the status page: how it authenticates, connected now (with its
   * listener and address) or when its last connection closed, and the messages it published, since
   * the gateway started.
   */
  devicesView(): DeviceView[] {
    const connected = new Map<string, Array<{ clientId: string; listener: string; remoteAddress: string }>>()
    for (const client of this.clients()) {
      const session = sessionOf(client)
      if (!session) continue
      const list = connected.get(session.device.id) ?? []
      const { listener, remoteAddress } = transportOf(client)
      list.push({ clientId: client.id, listener, remoteAddress })
      connected.set(session.device.id, list)
    }
    return [...this.access.registry.devices()].map((d) => {
      const seen = this.lastSeen.get(d.id)
      return {
        id: d.id,
        credentials: credentialsOf(d),
        connections: connected.get(d.id) ?? [],
        published: this.published.get(d.id) ?? 0,
        ...(seen !== undefined && { lastSeen: seen }),
      }
    })
  }

  listener(type: string): Listener | undefined {
    return this.listeners.find((l) => l.type === type)
  }

  /** Clients currently connected, with their sessions. */
  clients(): Client[] {
    return Object.values((this.broker as unknown as { clients: Record<string, Client> }).clients)
  }

  /**
   * Publishes a verified downlink command into the LAN broker, if the device
   * exists and policy lets it read the topic. Delivery then runs through
   * authorizeForward like any message: policy re-checked per subscriber, and
   * the payload sealed or MAC'd for the device when its topic requires it.
   */
  deliverCommand(
    deviceId: string,
    topic: string,
    payload: Buffer,
  ): Promise<'delivered' | 'unknown_device' | 'policy'> {
    const device = this.access.registry.byDeviceId(deviceId)
    if (!device) return Promise.resolve('unknown_device')
    const principal = principalFor(device, '', device.username)
    const decision = this.access.engine.decide(principal, { action: 'subscribe', topic, qos: 1 })
    if (!decision.allowed) return Promise.resolve('policy')
    return new Promise((resolve, reject) => {
      this.broker.publish(
        { cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false },
        (err?: Error) => (err ? reject(err) : resolve('delivered')),
      )
    })
  }

  /**
   * Why a key update for `deviceId` cannot go out on `topic` (docs/rotation.md), or undefined: a
   * plain topic name (no wildcard, not `$`), the device may subscribe to it, no device may publish
   * to it (none could replace or clear the retained update), and it carries no LAN protection (the
   * update is sealed already, under the old key; the forward hook would protect it again).
   */
  keyUpdateProblem(
    deviceId: string,
    topic: string,
  ): 'unknown_device' | 'bad_topic' | 'policy' | 'topic_writable' | 'topic_protected' | undefined {
    const device = this.access.registry.byDeviceId(deviceId)
    if (!device) return 'unknown_device'
    if (!isValidTopicName(topic) || topic.startsWith('$')) return 'bad_topic'
    const { engine, registry } = this.access
    if (
      !engine.decide(principalFor(device, '', device.username), { action: 'subscribe', topic, qos: 1 })
        .allowed
    )
      return 'policy'
    for (const other of registry.devices()) {
      const principal = principalFor(other, '', other.username)
      const request = { action: 'publish', topic, qos: 1, retain: true, payloadBytes: 1 } as const
      if (engine.decide(principal, request).allowed) return 'topic_writable'
    }
    return this.protection.requirements.modeFor(topic) === 'none' ? undefined : 'topic_protected'
  }

  /**
   * `update` sealed under `context` (the device's old key), gateway to device, with the gateway's
   * own sequence number, bound to `topic`; 'sequence_unavailable' when no number is durably reserved.
   */
  sealKeyUpdate(topic: string, context: DerivedContext, update: KeyUpdate): Buffer | 'sequence_unavailable' {
    const seq = this.protection.sequence.take()
    if (seq === undefined) return 'sequence_unavailable'
    return seal(context, 'gateway-to-device', seq, encodeKeyUpdate(update), topic)
  }

  /** Publishes `payload` retained at QoS 1 on `topic` (an empty payload clears the retained message). */
  publishRetained(topic: string, payload: Buffer): Promise<void> {
    return new Promise((resolve, reject) =>
      this.broker.publish(
        { cmd: 'publish', topic, payload, qos: 1, retain: true, dup: false },
        (err?: Error) => (err ? reject(err) : resolve()),
      ),
    )
  }

  /**
   * Applies a new registry and policy without dropping connections that remain allowed, then
   * reads the certificate files of the `tls` listeners again: a changed set is served to new
   * handshakes (open connections keep theirs); a set that does not work is refused, the old
   * one stays, and the report says why.
   */
  async reload(next: AccessSnapshot): Promise<ReloadReport> {
    sizeScryptSlots(this.passwordChecks, next)
    const report = await applyAccess(this.access, next, this.clients(), this.security)
    report.pskConnectionsClosed = this.retirePskConnections()
    this.schedulePskRetirement()
    for (const listener of this.listeners) {
      if (!listener.reloadCertificates) continue
      try {
        report.certificates.push(await listener.reloadCertificates())
      } catch (err) {
        report.certificateErrors.push({ listener: listener.name, error: (err as Error).message })
      }
    }
    return report
  }

  async close(): Promise<void> {
    clearTimeout(this.pskTimer)
    const closing = this.listeners.map((l) => l.close())
    await new Promise<void>((resolve) => this.broker.close(() => resolve()))
    // PUBLISH packets held by lan.deviceRate: their connections are closed now, so they go nowhere.
    this.access.devicePacer.release()
    await Promise.all(closing)
    await this.protection.close()
    this.logger.info('LAN broker closed')
  }
}
