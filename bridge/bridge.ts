import { createPublicKey } from 'node:crypto'
import { type Observable, tap } from 'rxjs'
import type { CloudConfig } from '../config/index.js'
import { trustedNow } from '../core/clock-floor.js'
import type { Logger } from '../core/logger.js'
import { type Metrics, nonZero, series } from '../core/metrics.js'
import type { SecurityEvents } from '../core/security-events.js'
import { settledWithin } from '../core/settled-within.js'
import type { OfferResult, UplinkMessage, UplinkSink } from '../gateway/uplink.js'
import { CloudLink, type LinkState } from './cloud-link.js'
import type { CloudProtector } from './cloud-protector.js'
import type { CloudSession } from './cloud-session.js'
import type { CommandNonces } from './command-nonces.js'
import { type CertificateStatus, ControlTopics, type GatewayCertificate } from './control.js'
import { DEAD_LETTER_REASONS } from './dead-letter/format.js'
import type { DeadLetterStats, DeadLetterStore } from './dead-letter/store.js'
import { COMMAND_REFUSALS, type Downlink, type Operator } from './downlink.js'
import { BridgeError } from './errors.js'
import { DEFAULT_RESTARTS, Forwarding, type ForwardingState, type RestartPolicy } from './forwarding.js'
import { SendGate } from './gate.js'
import { uplinkPipeline } from './pipeline.js'
import { MemoryQueue } from './queue/memory-queue.js'
import type { DeviceUsage, DropReason, UplinkQueue } from './queue/queue.js'
import type { ExpiryEntry, ExpiryWatch } from './rotation/expiry.js'
import { CertificateRotation, type DeviceCredentials } from './rotation/rotation.js'
import { type CloudLimits, unsendableAtLan } from './sendable.js'
import { findMapping } from './topic-map.js'

/** How long a stop waits for the cloud broker to acknowledge the gateway's offline status. */
export const OFFLINE_ACK_MS = 2_000

export interface BridgeOptions {
  cloud: CloudConfig
  gatewayId: string
  logger: Logger
  metrics: Metrics
  /** Seals and signs every message for the cloud. */
  protector: CloudProtector
  /** The TLS client certificate: the key binding is made with it, its expiry is reported. */
  certificate?: GatewayCertificate
  /** Verifies and delivers downlink commands; without it the gateway subscribes to nothing. */
  downlink?: Downlink
  /** Defaults to an in-memory queue bounded by cloud.queue.maxMessages. */
  queue?: UplinkQueue
  /** Where messages that must not be sent as they are are held aside (docs/bridge.md#dead-letters). */
  deadLetters: DeadLetterStore
  /** How the uplink pipeline is restarted after an error; default DEFAULT_RESTARTS. */
  restarts?: RestartPolicy
  /** Runs once when forwarding is given up (the gateway exits so that its supervisor restarts it). */
  onForwardingStopped?: (err: unknown) => void
  /** Where a cloud broker's packet over the link's size limit is reported (`cloud_message_rejected`). */
  security?: SecurityEvents
  /**
   * When given, the bridge sends only while it emits true (for example while the
   * WireGuard tunnel is healthy); while false the queue holds everything.
   * Before its first value the bridge holds.
   */
  gate$?: Observable<boolean>
  /**
   * true while a cloud connection may be made (the tunnel in place: its interface up, the cloud's
   * address routed through it); false cuts the live connection, and none is made until it is true.
   */
  connectGate$?: Observable<boolean>
  /** The tunnel's state for status and health messages (issue 6), when there is a tunnel. */
  tunnel?: () => unknown
  /**
   * Certificate rotation pushed from the cloud (docs/rotation.md); needs `certificate`. With
   * operators, the gateway subscribes to `<prefix>/<id>/rotate`.
   */
  rotation?: {
    operators: readonly Operator[]
    nonces: CommandNonces
    maxAgeSeconds: number
    stateDir: string
    security: SecurityEvents
    devices?: DeviceCredentials
    /** Its own log lines (`module: rotation`); default: a child of the bridge's, whose `module` it repeats. */
    logger?: Logger
  }
  /** Every certificate's days left, in status and health, refreshed each control interval. */
  expiry?: ExpiryWatch
}

export interface BridgeStatus {
  link: LinkState
  /** False while the gate (tunnel health) holds the bridge. */
  sending: boolean
  /** Whether the uplink pipeline runs, is being restarted after an error, or was given up. */
  forwarding: ForwardingState
  queue: {
    /** Where the queue keeps messages: `disk` (segment files) or `memory`. */
    store: 'disk' | 'memory'
    depth: number
    /**
     * disk: bytes of the queue's files (segments and their ack files, plus appends being
     * written); acknowledged records count until their whole segment is deleted.
     * memory: bytes of the records held.
     */
    bytes: number
    capacity: number
    oldestAgeMs: number | null
    dropped: Record<DropReason, number>
    /** Devices holding messages now, and the five that hold the most. */
    devices: { holding: number; top: Array<{ device: string } & DeviceUsage> }
  }
  /** Messages held aside instead of being sent (docs/bridge.md#dead-letters). */
  deadLetters: DeadLetterStats
  /** Messages the cloud acknowledged per second, over the last 10 s. */
  drainRatePerSecond: number
  /**
   * The deepest the queue was since it was last empty (sampled each second, and now): with the
   * depth, how far the drain of a backlog has come. 0 when the queue is empty.
   */
  backlogPeak: number
  delivered: number
  accepted: number
  refusedByCloud: number
  certificate?: CertificateStatus
  /** The expiry watch: each certificate the gateway uses, its days left (docs/rotation.md). */
  certificates?: readonly ExpiryEntry[]
  tunnel?: unknown
  /**
   * Every counter and gauge of the Metrics the bridge was given (in the gateway, the one
   * Metrics of the whole gateway: LAN, bridge, security events), by series name; counters
   * the gateway knows of are present from 0 (docs/bridge.md#metrics).
   */
  metrics: Record<string, number>
}

/** The counters the bridge keeps, declared so they show at 0 from the start. */
function declareBridgeCounters(metrics: Metrics): void {
  for (const name of [
    'uplink_accepted_total',
    'uplink_delivered_total',
    ...['queue_full', 'device_quota', 'unsendable', 'io_error', 'forwarding_stopped', 'error'].flatMap(
      (reason) => [
        series('uplink_dropped_total', { reason, qos: 0 }),
        series('uplink_dropped_total', { reason, qos: 1 }),
      ],
    ),
    ...DEAD_LETTER_REASONS.map((reason) => series('uplink_dead_letter_total', { reason })),
    ...['full', 'io_error'].map((reason) => series('uplink_dead_letter_failed_total', { reason })),
    'uplink_publish_interrupted_total',
    'uplink_protect_failed_total',
    'downlink_delivered_total',
    ...[...COMMAND_REFUSALS, 'error'].map((reason) => series('downlink_refused_total', { reason })),
  ]) {
    metrics.declare(name)
  }
}

const RATE_WINDOW = 10

/**
 * The bridge: takes device messages from the LAN broker (`offer`), holds them
 * in the queue, seals, signs and forwards them to the cloud over the link;
 * keeps the control tree (key binding, online/offline, health) and hands
 * verified downlink commands to the LAN.
 */
export class Bridge implements UplinkSink {
  readonly queue: UplinkQueue
  readonly link: CloudLink
  readonly control: ControlTopics
  private healthTimer: NodeJS.Timeout | undefined
  private rateTimer: NodeJS.Timeout | undefined
  private readonly deliveredSamples: Array<{ at: number; delivered: number }> = []
  /** BridgeStatus.backlogPeak. */
  private backlogPeak = 0
  private session: CloudSession | null = null
  private sending = false
  private readonly gate = new SendGate()
  /** Open while a cloud connection may be made (connectGate$). */
  private readonly linkGate = new SendGate()
  private readonly forwarding: Forwarding
  readonly deadLetters: DeadLetterStore
  /** What the LAN side checks each message against: the cloud broker's limits as last seen. */
  private readonly cloudLimits: CloudLimits
  readonly rotation: CertificateRotation | undefined

  constructor(private readonly options: BridgeOptions) {
    const { cloud, metrics, protector, gatewayId, logger } = options
    // Sequence numbers start from the clock so they keep rising across restarts of an in-memory queue.
    this.queue =
      options.queue ??
      new MemoryQueue(cloud.queue.maxMessages, {
        firstSeq: trustedNow() * 1000,
        deviceShare: cloud.queue.deviceShare,
      })
    this.cloudLimits = { mqtt5: cloud.protocolVersion === 5 }
    this.control = new ControlTopics(cloud.control.prefix, gatewayId)
    const downlink = options.downlink
    this.link = new CloudLink(cloud, cloud.clientId ?? `edge-gateway-${gatewayId}`, logger, metrics, {
      will: () => ({
        topic: this.control.status,
        payload: protector.control(this.control.status, 'status', {
          state: 'offline',
          reason: 'connection lost',
        }),
        retain: true,
      }),
      subscriptions: [
        ...(downlink?.subscriptions ?? []),
        ...((options.rotation?.operators.length ?? 0) > 0 ? [this.control.rotate] : []),
      ],
      onMessage: (topic, payload) => {
        if (topic === this.control.rotate) {
          this.rotation?.handle(payload).catch((err: unknown) => {
            metrics.increment(series('rotation_refused_total', { reason: 'error' }))
            logger.error({ err, topic }, 'rotation command could not be handled; nothing applied')
          })
          return
        }
        if (!downlink) return
        downlink.handle(topic, payload).catch((err: unknown) => {
          metrics.increment(series('downlink_refused_total', { reason: 'error' }))
          logger.error({ err, topic }, 'downlink command could not be handled; not delivered')
        })
      },
      onSession: (session) => this.announce(session),
      ...(options.connectGate$ && { gate: this.linkGate }),
      onOversize: (bytes, limit) =>
        options.security?.report(
          'cloud_message_rejected',
          { reason: 'packet_too_large', bytes, limit, cloud: `${cloud.host}:${cloud.port}` },
          `the cloud broker sent a packet of ${bytes} bytes, over the ${limit} the gateway takes: connection closed`,
        ),
    })
    this.deadLetters = options.deadLetters
    this.rotation =
      options.rotation && options.certificate
        ? new CertificateRotation({
            ...options.rotation,
            cloud,
            gatewayId,
            control: this.control,
            certificate: options.certificate,
            link: this.link,
            protector,
            metrics,
            logger: options.rotation.logger ?? logger.child({ module: 'rotation' }),
          })
        : undefined
    declareBridgeCounters(metrics)
    metrics.gauge('uplink_queue_depth', () => this.queue.size)
    metrics.gauge('uplink_queue_bytes', () => this.queue.stats().bytes)
    metrics.gauge('uplink_queue_capacity', () => this.queue.capacity)
    metrics.gauge('uplink_dead_letter_depth', () => this.deadLetters.stats().depth)
    metrics.gauge('uplink_dead_letter_bytes', () => this.deadLetters.stats().bytes)
    metrics.gauge('uplink_queue_oldest_age_seconds', () => {
      const oldest = this.queue.stats().oldestReceivedAt
      return oldest === undefined ? 0 : Math.round((Date.now() - oldest) / 1000)
    })
    metrics.gauge('uplink_drain_rate', () => this.drainRate())
    metrics.gauge('cloud_link_up', () => (this.link.state$.value.status === 'connected' ? 1 : 0))
    this.forwarding = new Forwarding(logger, metrics, options.restarts ?? DEFAULT_RESTARTS, (err) =>
      options.onForwardingStopped?.(err),
    )
  }

  /**
   * Holds a device message for the cloud, stamped with the protection its mapping
   * gives it (it never leaves with less). Resolves once the queue has it durably
   * (the device's PUBACK waits for this), or 'ignored' when no mapping sends its
   * topic up, or refuses it, counted in uplink_dropped_total by reason:
   * - `unsendable`: the cloud could never take it (sendable.ts), checked before the queue;
   * - `device_quota`: the device holds more than its share of a queue at least half full;
   * - 'full' (`queue_full`): the queue's stated policy refuses it (quota.ts).
   * Rejects when it cannot be held: QUEUE_ERR_IO (the disk failed: the cause has the
   * errno), BRIDGE_ERR_FORWARDING_STOPPED (forwarding was given up: nobody would send
   * it), or another QueueError; each counted too.
   */
  async offer(message: UplinkMessage): Promise<OfferResult> {
    const { cloud, metrics, protector } = this.options
    const mapping = findMapping(cloud.topics, message.topic)
    if (mapping === undefined) return 'ignored'
    const dropped = (reason: string) =>
      metrics.increment(series('uplink_dropped_total', { reason, qos: message.qos }))
    const forwarding = this.forwarding.state
    if (forwarding.status === 'stopped') {
      dropped('forwarding_stopped')
      throw new BridgeError(
        'BRIDGE_ERR_FORWARDING_STOPPED',
        `uplink forwarding stopped (${forwarding.cause}); the message is not held`,
      )
    }
    const unsendable = unsendableAtLan(message, mapping, this.options.gatewayId, protector, this.cloudLimits)
    if (unsendable) {
      dropped('unsendable')
      return { refused: 'unsendable', detail: unsendable }
    }
    let result: Awaited<ReturnType<UplinkQueue['tryAppend']>>
    try {
      result = await this.queue.tryAppend({ ...message, protection: protector.protectionFor(mapping) })
    } catch (err) {
      dropped((err as { code?: unknown }).code === 'QUEUE_ERR_IO' ? 'io_error' : 'error')
      throw err
    }
    if ('refused' in result) {
      if (result.refused === 'qos0_device_quota' || result.refused === 'qos1_device_quota') {
        dropped('device_quota')
        const { messages, bytes } = result.device
        const share = cloud.queue.deviceShare
        return {
          refused: 'device_quota',
          detail: `the device holds ${messages} message(s), ${bytes} bytes of the uplink queue: over its share (${share}) while the queue is at least half full`,
        }
      }
      dropped('queue_full')
      return 'full'
    }
    metrics.increment('uplink_accepted_total')
    return 'accepted'
  }

  async start(): Promise<void> {
    const { logger, metrics, cloud, gatewayId, protector } = this.options
    if (this.options.connectGate$) {
      this.linkGate.follow(this.options.connectGate$, (open) => {
        if (!open)
          this.link.cut(
            'the tunnel is not in place (its interface gone or down, or the cloud routed elsewhere)',
          )
      })
    }
    if (this.options.gate$) {
      this.gate.follow(this.options.gate$, (open) => {
        this.sending = open
        logger[open ? 'info' : 'warn'](
          { queueDepth: this.queue.size },
          open
            ? 'bridge sending: the tunnel is healthy'
            : 'bridge holding: the tunnel is not healthy; the queue keeps everything',
        )
      })
    } else {
      this.sending = true
    }
    const sessions = this.link.session$.pipe(
      tap((session) => {
        this.session = session
        // Kept while the link is down: the LAN side goes on checking against the last broker seen.
        if (session) this.cloudLimits.maxPacketBytes = session.maxPacketBytes
      }),
    )
    this.forwarding.start(
      uplinkPipeline({
        queue: this.queue,
        deadLetters: this.deadLetters,
        sessions,
        mappings: cloud.topics,
        gatewayId,
        inflight: cloud.inflight,
        gate: this.gate,
        protector,
        logger,
        metrics,
      }),
    )
    this.rateTimer = setInterval(() => {
      this.deliveredSamples.push({ at: Date.now(), delivered: metrics.get('uplink_delivered_total') })
      if (this.deliveredSamples.length > RATE_WINDOW + 1) this.deliveredSamples.shift()
      this.sampleBacklog(this.queue.stats().depth)
    }, 1000)
    this.rateTimer.unref()
    this.healthTimer = setInterval(() => this.reportHealth(), cloud.control.intervalSeconds * 1000)
    this.healthTimer.unref()
    await this.options.expiry?.refresh()
    await this.link.start()
  }

  /** On each new session: the key binding and "online", both retained, before any message. */
  private announce(session: CloudSession, bindingOnly = false): void {
    const { protector, certificate, gatewayId, logger } = this.options
    const publish = (topic: string, payload: Buffer) =>
      session
        .publish({ topic, payload, retain: true, userProperties: { 'gw-id': gatewayId } })
        .catch((err: unknown) => {
          logger.warn({ topic, err: (err as Error).message }, 'control message not acknowledged by the cloud')
        })
    if (certificate) {
      const publicKey = createPublicKey(protector.signingKey)
      void publish(this.control.binding, certificate.binding(gatewayId, protector, publicKey))
    }
    if (bindingOnly) return
    void publish(this.control.status, protector.control(this.control.status, 'status', { state: 'online' }))
  }

  /**
   * The status line in the log and the signed health message: the status with only the
   * series that are not zero (every series is in status.json; zeros here would only be noise).
   * The logger already carries `module`: adding one here would write the key twice.
   */
  private reportHealth(): void {
    // A broker without retained messages keeps no binding for a consumer that subscribes later:
    // it is sent again with each health message, so such a consumer waits one interval at most.
    if (!this.link.retainsMessages && this.session && !this.session.closed) this.announce(this.session, true)
    const full = this.status()
    const status = { ...full, metrics: nonZero(full.metrics) }
    this.options.logger.info({ status }, 'bridge status')
    void this.options.expiry?.refresh()
    void this.rotation?.tick()
    if (!this.options.expiry && status.certificate && status.certificate.daysLeft < 30) {
      this.options.logger.warn(
        { certificate: status.certificate },
        `the gateway certificate expires in ${status.certificate.daysLeft} day(s); rotate it`,
      )
    }
    const session = this.sending ? this.session : null
    if (!session) return
    const topic = this.control.health
    session
      .publish({
        topic,
        payload: this.options.protector.control(topic, 'health', status),
        retain: false,
        userProperties: { 'gw-id': this.options.gatewayId },
      })
      .catch(() => undefined)
  }

  /**
   * Messages the cloud acknowledged per second, to one decimal: from the oldest sample of the last
   * 10 s taken while the link was up to the count now. 0 while the link is down, and in its first
   * half second up (after an outage, seconds without acknowledgements would make a backlog's drain
   * look slower than it is, and the time to empty it longer).
   */
  private drainRate(): number {
    const link = this.link.state$.value
    if (link.status !== 'connected') return 0
    const now = Date.now()
    const from = this.deliveredSamples.find((s) => s.at >= link.since && s.at >= now - RATE_WINDOW * 1000)
    if (from === undefined || now - from.at < 500) return 0
    const rate =
      (this.options.metrics.get('uplink_delivered_total') - from.delivered) / ((now - from.at) / 1000)
    return Math.round(rate * 10) / 10
  }

  private sampleBacklog(depth: number): number {
    this.backlogPeak = depth === 0 ? 0 : Math.max(this.backlogPeak, depth)
    return this.backlogPeak
  }

  status(): BridgeStatus {
    const stats = this.queue.stats()
    const oldest = stats.oldestReceivedAt
    const { metrics, certificate, tunnel, expiry } = this.options
    return {
      link: this.link.state$.value,
      sending: this.sending,
      forwarding: this.forwarding.state,
      queue: {
        store: this.queue.store,
        depth: stats.depth,
        bytes: stats.bytes,
        capacity: this.queue.capacity,
        oldestAgeMs: oldest === undefined ? null : Date.now() - oldest,
        dropped: stats.dropped,
        devices: this.queue.devices(5),
      },
      deadLetters: this.deadLetters.stats(),
      drainRatePerSecond: this.drainRate(),
      backlogPeak: this.sampleBacklog(stats.depth),
      delivered: metrics.get('uplink_delivered_total'),
      accepted: metrics.get('uplink_accepted_total'),
      refusedByCloud: metrics.get(series('uplink_dead_letter_total', { reason: 'cloud_refused' })),
      ...(certificate && { certificate: certificate.status() }),
      ...(expiry && { certificates: expiry.entries }),
      ...(tunnel && { tunnel: tunnel() }),
      metrics: metrics.snapshot(),
    }
  }

  async stop(): Promise<void> {
    if (this.healthTimer) clearInterval(this.healthTimer)
    if (this.rateTimer) clearInterval(this.rateTimer)
    this.gate.stop()
    this.linkGate.stop()
    this.forwarding.stop()
    const session = this.link.session$.value
    if (session) {
      // A clean stop: say "offline" ourselves (the Will is only for a lost connection). Waited for
      // OFFLINE_ACK_MS at most: a broker that hangs would otherwise hold the stop until the keepalive
      // gives up (1.5 keepalives), past a supervisor's stop timeout.
      const topic = this.control.status
      const published = session.publish({
        topic,
        payload: this.options.protector.control(topic, 'status', { state: 'offline', reason: 'stopped' }),
        retain: true,
        userProperties: { 'gw-id': this.options.gatewayId },
      })
      if (!(await settledWithin(published, OFFLINE_ACK_MS))) {
        this.options.logger.warn(
          { waitedMs: OFFLINE_ACK_MS },
          `the cloud broker did not acknowledge the offline status within ${OFFLINE_ACK_MS} ms; stopping without it (the broker publishes the gateway's Will once it sees the connection gone)`,
        )
      }
    }
    await this.link.stop()
    await this.queue.close()
    await this.deadLetters.close()
  }
}
