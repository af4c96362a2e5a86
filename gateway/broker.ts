import { Aedes } from 'aedes'
import type { GatewayConfig } from '../config/index.js'
import type { Logger } from '../core/logger.js'
import type { Metrics } from '../core/metrics.js'
import type { SecurityEvents } from '../core/security-events.js'
import { sessionOf, transportOf } from './connection-context.js'
import { createAuthenticate } from './hooks/authenticate.js'
import { createAuthorizeForward } from './hooks/authorize-forward.js'
import { createAuthorizePublish } from './hooks/authorize-publish.js'
import { createAuthorizeSubscribe } from './hooks/authorize-subscribe.js'
import { type Listener, startListener } from './listeners/index.js'
import type { DeviceRegistry } from './registry.js'
import type { UplinkSink } from './uplink.js'

export interface LanGatewayOptions {
  lan: GatewayConfig['lan']
  registry: DeviceRegistry
  uplink: UplinkSink
  logger: Logger
  metrics: Metrics
  security: SecurityEvents
}

/** The LAN side: one aedes broker with our hooks, behind one listener per configured transport. */
export class LanGateway {
  private constructor(
    readonly broker: Aedes,
    readonly listeners: ReadonlyArray<Listener>,
    private readonly logger: Logger,
  ) {}

  static async start(options: LanGatewayOptions): Promise<LanGateway> {
    const { logger, security, metrics } = options
    const broker = await Aedes.createBroker({
      id: 'edge-gateway',
      authenticate: createAuthenticate({
        registry: options.registry,
        security,
        logger,
        devicePrefixTemplate: options.lan.devicePrefix,
      }),
      authorizePublish: createAuthorizePublish({ security, logger, uplink: options.uplink }),
      authorizeSubscribe: createAuthorizeSubscribe({ security }),
      authorizeForward: createAuthorizeForward({ security }),
    })
    metrics.gauge('lan_connected_clients', () => broker.connectedClients)
    broker.on('clientError', (client, err) => {
      logger.debug(
        { device: sessionOf(client)?.device.id, clientId: client.id, err: err.message },
        'client connection error',
      )
    })
    broker.on('connectionError', (client, err) => {
      metrics.increment('lan_protocol_errors_total')
      logger.warn(
        { event: 'protocol_error', listener: transportOf(client).listener, reason: err.message },
        'connection closed before CONNECT completed',
      )
    })
    broker.on('clientDisconnect', (client) => {
      const session = sessionOf(client)
      if (session) logger.info({ device: session.device.id, clientId: client.id }, 'device disconnected')
    })

    const listeners: Listener[] = []
    try {
      for (const config of options.lan.listeners) {
        listeners.push(await startListener(config, { broker, registry: options.registry, logger, security }))
      }
    } catch (err) {
      await Promise.all(listeners.map((l) => l.close()))
      await new Promise<void>((resolve) => broker.close(() => resolve()))
      throw err
    }
    return new LanGateway(broker, listeners, logger)
  }

  listener(type: string): Listener | undefined {
    return this.listeners.find((l) => l.type === type)
  }

  async close(): Promise<void> {
    const closing = this.listeners.map((l) => l.close())
    await new Promise<void>((resolve) => this.broker.close(() => resolve()))
    await Promise.all(closing)
    this.logger.info('LAN broker closed')
  }
}
