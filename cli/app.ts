import { Bridge } from '../bridge/index.js'
import type { GatewayConfig } from '../config/index.js'
import type { Logger } from '../core/logger.js'
import { Metrics } from '../core/metrics.js'
import { SecurityEvents } from '../core/security-events.js'
import { DeviceRegistry, LanGateway } from '../gateway/index.js'

export interface EdgeGateway {
  readonly config: Readonly<GatewayConfig>
  readonly lan: LanGateway
  readonly bridge: Bridge
  readonly metrics: Metrics
  close(): Promise<void>
}

/**
 * Starts the whole gateway from a validated config: the bridge first (so the
 * LAN broker has somewhere to put messages), then the LAN listeners.
 */
export async function startEdgeGateway(
  config: Readonly<GatewayConfig>,
  logger: Logger,
): Promise<EdgeGateway> {
  const metrics = new Metrics()
  const security = new SecurityEvents(logger.child({ module: 'security' }), metrics)
  const registry = await DeviceRegistry.fromConfig(config.devices)
  const bridge = new Bridge({
    cloud: config.cloud,
    gatewayId: config.gateway.id,
    logger: logger.child({ module: 'bridge' }),
    metrics,
  })
  await bridge.start()
  let lan: LanGateway
  try {
    lan = await LanGateway.start({
      lan: config.lan,
      registry,
      uplink: bridge,
      logger: logger.child({ module: 'gateway' }),
      metrics,
      security,
    })
  } catch (err) {
    await bridge.stop()
    throw err
  }
  logger.info({ gateway: config.gateway.id, devices: registry.size }, 'edge gateway started')
  return {
    config,
    lan,
    bridge,
    metrics,
    async close() {
      await lan.close()
      await bridge.stop()
      logger.info('edge gateway stopped')
    },
  }
}
