import { combineLatest, distinctUntilChanged, map, type Observable, of, type Subscription } from 'rxjs'
import type { CloudConfig } from '../config/index.js'
import type { Logger } from '../core/logger.js'
import type { Metrics } from '../core/metrics.js'
import type { OfferResult, UplinkMessage, UplinkSink } from '../gateway/uplink.js'
import { CloudLink, type LinkState } from './cloud-link.js'
import { uplinkPipeline } from './pipeline.js'
import { MemoryQueue } from './queue/memory-queue.js'
import type { UplinkQueue } from './queue/queue.js'
import { mapTopic } from './topic-map.js'

export interface BridgeOptions {
  cloud: CloudConfig
  gatewayId: string
  logger: Logger
  metrics: Metrics
  /** Defaults to an in-memory queue bounded by cloud.queue.maxMessages. */
  queue?: UplinkQueue
  /**
   * When given, the bridge sends only while it emits true (for example while the
   * WireGuard tunnel is healthy); while false the queue holds everything.
   * Before its first value the bridge holds.
   */
  gate$?: Observable<boolean>
}

export interface BridgeStatus {
  link: LinkState
  queueDepth: number
  queueCapacity: number
  oldestAgeMs: number | null
}

/**
 * The bridge: takes device messages from the LAN broker (`offer`), holds them
 * in the queue, and forwards them to the cloud over the link.
 */
export class Bridge implements UplinkSink {
  readonly queue: UplinkQueue
  readonly link: CloudLink
  private subscription: Subscription | undefined

  constructor(private readonly options: BridgeOptions) {
    const { cloud, metrics } = options
    // Sequence numbers start from the clock so they keep rising across restarts of an in-memory queue.
    this.queue = options.queue ?? new MemoryQueue(cloud.queue.maxMessages, Date.now() * 1000)
    this.link = new CloudLink(
      cloud,
      cloud.clientId ?? `edge-gateway-${options.gatewayId}`,
      options.logger,
      metrics,
    )
    metrics.gauge('uplink_queue_depth', () => this.queue.size)
    metrics.gauge('uplink_queue_bytes', () => this.queue.stats().bytes)
    metrics.gauge('uplink_queue_capacity', () => this.queue.capacity)
  }

  /**
   * Holds a device message for the cloud. Resolves once the queue has it
   * durably (the device's PUBACK waits for this), or 'full' when the queue's
   * stated policy refuses it, or 'ignored' when no mapping sends its topic up.
   */
  async offer(message: UplinkMessage): Promise<OfferResult> {
    if (mapTopic(this.options.cloud.topics, message.topic) === undefined) return 'ignored'
    const entry = await this.queue.append(message).catch((err: unknown) => {
      this.options.logger.error(
        { err, device: message.deviceId },
        'queue append failed; message not acknowledged',
      )
      return undefined
    })
    if (!entry) {
      this.options.metrics.increment(`uplink_dropped_total{reason="queue_full",qos="${message.qos}"}`)
      return 'full'
    }
    this.options.metrics.increment('uplink_accepted_total')
    return 'accepted'
  }

  async start(): Promise<void> {
    const { logger, metrics, cloud, gatewayId } = this.options
    this.subscription = uplinkPipeline({
      queue: this.queue,
      sessions: combineLatest([
        this.link.session$,
        (this.options.gate$ ?? of(true)).pipe(distinctUntilChanged()),
      ]).pipe(
        map(([session, open]) => (open ? session : null)),
        distinctUntilChanged(),
      ),
      mappings: cloud.topics,
      gatewayId,
      inflight: cloud.inflight,
      logger,
      metrics,
    }).subscribe({
      error: (err: unknown) => logger.fatal({ err }, 'uplink pipeline stopped unexpectedly'),
    })
    await this.link.start()
  }

  status(): BridgeStatus {
    const oldest = this.queue.stats().oldestReceivedAt
    return {
      link: this.link.state$.value,
      queueDepth: this.queue.size,
      queueCapacity: this.queue.capacity,
      oldestAgeMs: oldest === undefined ? null : Date.now() - oldest,
    }
  }

  async stop(): Promise<void> {
    this.subscription?.unsubscribe()
    await this.link.stop()
    await this.queue.close()
  }
}
