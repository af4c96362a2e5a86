import { join } from 'node:path'
import { DeadLetterStore, deadLetterDir } from '../bridge/dead-letter/store.js'
import { Bridge, MemoryQueue, type UplinkQueue } from '../bridge/index.js'
import { FileQueue } from '../bridge/queue/file-queue.js'
import type { DeviceCredentials } from '../bridge/rotation/rotation.js'
import type { GatewayConfig } from '../config/index.js'
import { ClockFloor, trustedNow } from '../core/clock-floor.js'
import type { Logger } from '../core/logger.js'
import { Metrics } from '../core/metrics.js'
import { SecurityEvents } from '../core/security-events.js'
import { StateLock } from '../core/state-lock.js'
import { LanGateway, loadAccess, type ReloadReport } from '../gateway/index.js'
import { KeyUpdateStore } from '../gateway/key-updates.js'
import type { TunnelState } from '../vpn/health-state.js'
import { loadCloudRuntime } from './cloud-runtime.js'
import { restartNeeded } from './restart-needed.js'
import { writeStatusPeriodically } from './status-file.js'
import { cloudLinkConfig, startVpn, type VpnMode } from './vpn-runtime.js'

/** The uplink queue: on disk (crash-safe) unless the config asks for memory. */
async function openQueue(config: Readonly<GatewayConfig>, logger: Logger): Promise<UplinkQueue> {
  const settings = config.cloud.queue
  if (settings.store === 'memory') {
    return new MemoryQueue(settings.maxMessages, {
      // From the clock floor: a restart with the clock behind (a Pi after a power cut) must not
      // number below the last run, or the cloud's de-duplication would drop what follows.
      firstSeq: trustedNow() * 1000,
      deviceShare: settings.deviceShare,
    })
  }
  const { queue, recovery } = await FileQueue.open(join(config.gateway.stateDir, 'queue'), {
    quotaBytes: settings.quotaBytes,
    maxMessages: settings.maxMessages,
    deviceShare: settings.deviceShare,
    durability: settings.durability,
    logger: logger.child({ module: 'queue' }),
  })
  const level = recovery.corrupted > 0 || recovery.tornBytes > 0 ? 'warn' : 'info'
  logger[level](
    {
      module: 'queue',
      ...recovery,
      segmentBytes: queue.segmentBytes,
      diskBytes: queue.diskBytes,
      durability: settings.durability,
    },
    `uplink queue opened: ${recovery.held} message(s) held for the cloud`,
  )
  if (queue.diskBytes !== undefined && settings.quotaBytes > queue.diskBytes) {
    logger.warn(
      { module: 'queue', quotaBytes: settings.quotaBytes, diskBytes: queue.diskBytes },
      `cloud.queue.quotaBytes (${settings.quotaBytes}) is larger than the filesystem of the state folder (${queue.diskBytes} bytes): the disk fills before the quota, and messages are then refused as I/O errors (ENOSPC) until the backlog drains`,
    )
  }
  return queue
}

/** The dead letters' own quota: an eighth of cloud.queue.quotaBytes, from 64 KiB to 16 MiB (docs/bridge.md#dead-letters). */
export function deadLetterQuota(queueQuotaBytes: number): number {
  return Math.min(16 * 1024 * 1024, Math.max(64 * 1024, Math.floor(queueQuotaBytes / 8)))
}

/** The dead letters, on disk in <stateDir>/dead-letter whatever the queue's store. */
async function openDeadLetters(config: Readonly<GatewayConfig>, logger: Logger): Promise<DeadLetterStore> {
  const log = logger.child({ module: 'dead-letter' })
  const { store, report } = await DeadLetterStore.open(deadLetterDir(config.gateway.stateDir), {
    quotaBytes: deadLetterQuota(config.cloud.queue.quotaBytes),
    logger: log,
  })
  const level = report.letters > 0 || report.damaged > 0 || report.tornBytes > 0 ? 'warn' : 'info'
  log[level](
    { ...report },
    `dead letters opened: ${report.letters} message(s) held aside (edge-gateway deadletter list)`,
  )
  return store
}

export interface EdgeGateway {
  readonly config: Readonly<GatewayConfig>
  readonly lan: LanGateway
  readonly bridge: Bridge
  readonly metrics: Metrics
  /** `off` without a `vpn` section; `managed` when the gateway runs the tunnel; `system` when it only watches. */
  readonly vpnMode: VpnMode
  /** The WireGuard tunnel's latest health poll; null with the VPN off or before the first poll. */
  readonly tunnel: TunnelState | null
  /**
   * Resolves when the gateway can no longer forward (the uplink pipeline was given up after its
   * restarts); `edge-gateway start` then closes it and exits non-zero. Never rejects.
   */
  readonly failed: Promise<Error>
  /** The port of /metrics and /healthz (observability.listen), when it is on. */
  readonly observabilityPort: number | undefined
  /**
   * Applies the devices, policies (and the Mosquitto files), lan.passwordPepperFile and
   * lan.deviceRate of a new config; other sections need a restart: `restartNeeded` names those that
   * differ from the config it started with.
   */
  reload(next: Readonly<GatewayConfig>): Promise<ReloadReport & { restartNeeded: string[] }>
  close(): Promise<void>
}

/**
 * A device PSK pushed from the cloud (docs/rotation.md), applied to `configFile` as
 * `edge-gateway device rotate` does; the running gateway reloads it from the file watch.
 */
function deviceCredentialsIn(
  configFile: string,
  lanStarted: Promise<{ lan: LanGateway; updates: KeyUpdateStore }>,
  reload: () => Promise<void>,
): DeviceCredentials {
  const refusal = (err: unknown) => {
    const code = (err as { code?: unknown }).code
    return {
      refused: code === 'PKI_ERR_WRITE_FILE' ? ('write_failed' as const) : ('invalid_config' as const),
      detail: (err as Error).message,
    }
  }
  return {
    async rotatePayloadKey(deviceId, topic, { overlapHours }) {
      const { lan, updates } = await lanStarted
      const problem = lan.keyUpdateProblem(deviceId, topic)
      if (problem) return { refused: problem, detail: `the key update cannot go to ${deviceId} on ${topic}` }
      const { planPayloadKeyRotation, commitPayloadKeyRotation, PskRotationError } = await import(
        './actions/device.js'
      )
      const { readMasterSecretConfig } = await import('../gateway/protection/master-secret.js')
      const { deriveContext } = await import('../crypto/context.js')
      let plan: Awaited<ReturnType<typeof planPayloadKeyRotation>> | undefined
      try {
        plan = await planPayloadKeyRotation(configFile, deviceId, { overlapHours })
        // Sealed first, under the old key (the device has no other yet): nothing is written unless it can go out.
        const until = Date.parse(plan.until)
        const sealed = lan.sealKeyUpdate(topic, deriveContext(await readMasterSecretConfig(plan.oldKey)), {
          kid: Buffer.from(plan.kid, 'hex'),
          masterSecret: plan.secret,
          until,
        })
        if (sealed === 'sequence_unavailable') {
          return {
            refused: sealed,
            detail: 'no gateway sequence number is durably reserved: nothing changed',
          }
        }
        await commitPayloadKeyRotation(configFile, deviceId, plan)
        // The registry knows the new kid before the device can have it.
        await reload()
        // Kept on disk and retained until the overlap ends: a restart publishes it again.
        await updates.send(deviceId, topic, sealed, until)
        return { kid: plan.kid, previousKid: plan.previousKid, until: plan.until }
      } catch (err) {
        if (err instanceof PskRotationError) return { refused: err.reason, detail: err.message }
        return refusal(err)
      } finally {
        plan?.secret.fill(0)
      }
    },
    async rotatePsk(deviceId, key, { identity, overlapHours }) {
      const { applyPskRotation, PskRotationError } = await import('./actions/device.js')
      try {
        return await applyPskRotation(configFile, deviceId, {
          key,
          overlapHours,
          ...(identity !== undefined && { identity }),
        })
      } catch (err) {
        if (err instanceof PskRotationError) return { refused: err.reason, detail: err.message }
        return refusal(err)
      }
    },
  }
}

/**
 * Starts the whole gateway from a validated config: the bridge first (so the
 * LAN broker has somewhere to put messages), then the LAN listeners.
 */
export async function startEdgeGateway(
  config: Readonly<GatewayConfig>,
  logger: Logger,
  options: {
    /** The config file the gateway runs with: a device PSK pushed from the cloud is written there. */
    configFile?: string
  } = {},
): Promise<EdgeGateway> {
  // First: a second gateway on this state folder would open the queue beside the running one.
  const lock = await StateLock.acquire(config.gateway.stateDir)
  // Before anything that decides on a key's retirement: the time the last run saw is the floor.
  const clockFloor = await ClockFloor.open(config.gateway.stateDir, logger.child({ module: 'clock' }))
  const metrics = new Metrics()
  const security = new SecurityEvents(logger.child({ module: 'security' }), metrics)
  const access = { ...(await loadAccess(config)), deviceRate: config.lan.deviceRate }
  for (const warning of access.warnings) logger.warn({ module: 'policies' }, warning)
  // Commands verified before the LAN broker is up wait for it.
  let lanReady: (lan: LanGateway) => void = () => undefined
  const lanStarted = new Promise<LanGateway>((resolve) => {
    lanReady = resolve
  })
  const cloudRuntime = await loadCloudRuntime(config, logger, metrics, security, {
    deliverCommand: async (deviceId, topic, payload) =>
      (await lanStarted).deliverCommand(deviceId, topic, payload),
  })
  const queue = await openQueue(config, logger)
  const deadLetters = await openDeadLetters(config, logger).catch(async (err: unknown) => {
    await queue.close()
    throw err
  })
  // The tunnel comes up before the bridge connects; its health opens and closes the bridge.
  const vpn = await startVpn(config, { logger: logger.child({ module: 'vpn' }), metrics }).catch(
    async (err: unknown) => {
      await queue.close()
      await deadLetters.close()
      throw err
    },
  )
  let failed: (err: Error) => void = () => undefined
  const failure = new Promise<Error>((resolve) => {
    failed = resolve
  })
  void vpn.lost?.then((err) => failed(err))
  const configFile = options.configFile
  // Set once the gateway is up: a pushed device key is applied before the device can use it.
  let reloadFromFile: () => Promise<void> = async () => undefined
  let updates: KeyUpdateStore | undefined
  const keyUpdates = (lan: LanGateway) =>
    (updates ??= new KeyUpdateStore(
      join(config.gateway.stateDir, 'key-updates'),
      (topic, payload) => lan.publishRetained(topic, payload),
      logger.child({ module: 'key-updates' }),
    ))
  const bridge = new Bridge({
    ...cloudRuntime,
    ...(configFile && {
      rotation: {
        ...cloudRuntime.rotation,
        // From the gateway's logger, not the bridge's: one `module` key per line, not two.
        logger: logger.child({ module: 'rotation' }),
        devices: deviceCredentialsIn(
          configFile,
          lanStarted.then((lan) => ({ lan, updates: keyUpdates(lan) })),
          () => reloadFromFile(),
        ),
      },
    }),
    cloud: cloudLinkConfig(config.cloud, vpn.cloudAddress),
    gatewayId: config.gateway.id,
    logger: logger.child({ module: 'bridge' }),
    metrics,
    queue,
    deadLetters,
    onForwardingStopped: (err) => failed(err instanceof Error ? err : new Error(String(err))),
    security,
    ...(vpn.gate$ && { gate$: vpn.gate$ }),
    ...(vpn.connectGate$ && { connectGate$: vpn.connectGate$ }),
    ...(vpn.mode !== 'off' && { tunnel: () => vpn.state }),
  })
  await bridge.start().catch(async (err: unknown) => {
    await bridge.stop().catch(() => undefined)
    await vpn.close()
    throw err
  })
  let lan: LanGateway
  try {
    lan = await LanGateway.start({
      lan: config.lan,
      stateDir: config.gateway.stateDir,
      access,
      uplink: bridge,
      logger: logger.child({ module: 'gateway' }),
      metrics,
      security,
    })
  } catch (err) {
    await bridge.stop()
    await vpn.close()
    throw err
  }
  lanReady(lan)
  // Key updates still in their overlap are retained again (the LAN broker keeps retained messages in memory).
  await keyUpdates(lan)
    .start()
    .catch((err: unknown) =>
      logger.warn(
        { module: 'key-updates', err: (err as Error).message },
        'key updates could not be published again',
      ),
    )
  // prom-client is loaded only when observability.listen is set.
  const observability = config.observability.listen
    ? await (await import('./observability.js'))
        .startObservability(
          config,
          metrics,
          {
            listening: () => lan.listeners.length > 0,
            bridge: () => {
              const s = bridge.status()
              return {
                forwarding: s.forwarding.status,
                link: s.link.status,
                sending: s.sending,
                store: s.queue.store,
              }
            },
            page: () => ({
              gatewayId: config.gateway.id,
              now: Date.now(),
              devices: lan.devicesView(),
              bridge: bridge.status(),
              recentEvents: security.recent(),
            }),
          },
          logger.child({ module: 'observability' }),
          security,
        )
        .catch(async (err: unknown) => {
          await lan.close()
          await bridge.stop()
          await vpn.close()
          throw err
        })
    : undefined
  const startedAt = new Date().toISOString()
  const statusWriter = writeStatusPeriodically(
    config.gateway.stateDir,
    () => ({
      gateway: config.gateway.id,
      pid: process.pid,
      startedAt,
      lan: { connectedClients: lan.broker.connectedClients },
      bridge: bridge.status(),
    }),
    logger.child({ module: 'status' }),
  )
  logger.info(
    { gateway: config.gateway.id, devices: access.registry.size, rules: access.engine.rules.length },
    'edge gateway started',
  )
  let current = config
  const gateway: EdgeGateway = {
    get config() {
      return current
    },
    lan,
    bridge,
    metrics,
    failed: failure,
    vpnMode: vpn.mode,
    get tunnel() {
      return vpn.state
    },
    async reload(next) {
      const loaded = { ...(await loadAccess(next)), deviceRate: next.lan.deviceRate }
      for (const warning of loaded.warnings) logger.warn({ module: 'policies' }, warning)
      const report = await lan.reload(loaded)
      current = next
      return { ...report, restartNeeded: restartNeeded(config, next) }
    },
    get observabilityPort() {
      return observability?.port
    },
    async close() {
      await observability?.close()
      updates?.stop()
      await lan.close()
      await bridge.stop()
      await cloudRuntime.rotation.nonces.close()
      await statusWriter.stop()
      await vpn.close()
      await clockFloor.close()
      await lock.release()
      security.flush()
      logger.info('edge gateway stopped')
    },
  }
  if (configFile) {
    reloadFromFile = async () => {
      const { loadConfig } = await import('../config/index.js')
      await gateway.reload(await loadConfig(configFile))
    }
  }
  return gateway
}
