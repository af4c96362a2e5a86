import type { KeyObject } from 'node:crypto'
import type { DownlinkConfig } from '../config/index.js'
import type { Logger } from '../core/logger.js'
import type { Metrics } from '../core/metrics.js'
import type { SecurityEvents } from '../core/security-events.js'
import type { CommandNonces } from './command-nonces.js'
import { verifyCommand } from './envelope.js'
import { mapCloudTopic } from './topic-map.js'

/** Where verified commands go: the LAN broker, under policy. */
export interface DownlinkSink {
  deliverCommand(
    deviceId: string,
    topic: string,
    payload: Buffer,
  ): Promise<'delivered' | 'unknown_device' | 'policy'>
}

export interface Operator {
  name: string
  kid: Buffer
  key: KeyObject
}

/** Why a command was refused; stable strings for metrics and security events. */
export const COMMAND_REFUSALS = [
  'unmapped_topic',
  'malformed',
  'oversize',
  'unknown_kid',
  'bad_signature',
  'wrong_gateway',
  'stale',
  'replayed',
  'too_many_nonces',
  'unknown_device',
  'policy',
] as const

export type CommandRefusal = (typeof COMMAND_REFUSALS)[number]

/**
 * Downlink commands from the cloud (docs/cloud-envelope.md): accepted only when
 * signed by a trusted operator, addressed to this gateway, fresh (within
 * maxAgeSeconds of the gateway's clock) and never seen before; then published
 * into the LAN broker, where delivery seals them for the device when its
 * topic requires it. Everything else is dropped and reported.
 */
export class Downlink {
  private readonly operators = new Map<string, Operator>()

  constructor(
    private readonly config: DownlinkConfig,
    private readonly gatewayId: string,
    operators: readonly Operator[],
    private readonly nonces: CommandNonces,
    private readonly sink: DownlinkSink,
    private readonly security: SecurityEvents,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
  ) {
    for (const o of operators) this.operators.set(o.kid.toString('hex'), o)
  }

  /** Cloud filters to subscribe to. */
  get subscriptions(): string[] {
    return this.config.topics.map((t) => `${t.cloud}#`)
  }

  async handle(cloudTopic: string, bytes: Buffer, now = Date.now()): Promise<'delivered' | CommandRefusal> {
    const outcome = await this.check(cloudTopic, bytes, now)
    if (outcome.result === 'delivered') {
      this.metrics.increment('downlink_delivered_total')
      this.logger.info(
        {
          device: outcome.deviceId,
          topic: outcome.localTopic,
          operator: outcome.operator,
          bytes: bytes.length,
        },
        'downlink command delivered to the LAN',
      )
    } else {
      this.metrics.increment(`downlink_refused_total{reason="${outcome.result}"}`)
      this.security.report(
        'command_rejected',
        {
          reason: outcome.result,
          topic: cloudTopic,
          bytes: bytes.length,
          ...(outcome.deviceId !== undefined && { device: outcome.deviceId }),
          ...(outcome.operator !== undefined && { operator: outcome.operator }),
        },
        `downlink command refused (${outcome.result}): not delivered`,
      )
    }
    return outcome.result
  }

  private async check(
    cloudTopic: string,
    bytes: Buffer,
    now: number,
  ): Promise<{
    result: 'delivered' | CommandRefusal
    deviceId?: string
    operator?: string
    localTopic?: string
  }> {
    const localTopic = mapCloudTopic(this.config.topics, cloudTopic)
    if (localTopic === undefined) return { result: 'unmapped_topic' }
    let operator: Operator | undefined
    const verified = verifyCommand(
      (kid) => {
        operator = this.operators.get(kid.toString('hex'))
        return operator?.key
      },
      cloudTopic,
      bytes,
    )
    if ('failure' in verified) {
      const f = verified.failure
      const result: CommandRefusal =
        f === 'oversize' || f === 'unknown_kid' || f === 'bad_signature' ? f : 'malformed'
      return { result, ...(operator && f === 'bad_signature' && { operator: operator.name }) }
    }
    const { command } = verified
    const who = { deviceId: command.deviceId, operator: operator?.name ?? '?', localTopic }
    if (command.gatewayId !== this.gatewayId) return { result: 'wrong_gateway', ...who }
    const window = this.config.maxAgeSeconds * 1000
    if (Math.abs(now - command.timestamp) > window) return { result: 'stale', ...who }
    const remembered = await this.nonces.remember(command.nonce, command.timestamp + window, now)
    if (remembered === 'replayed') return { result: 'replayed', ...who }
    if (remembered === 'full') return { result: 'too_many_nonces', ...who }
    const delivered = await this.sink.deliverCommand(command.deviceId, localTopic, command.body)
    return { result: delivered, ...who }
  }
}
