import type { AuthorizePublishHandler } from 'aedes'
import type { Logger } from '../../core/logger.js'
import type { SecurityEvents } from '../../core/security-events.js'
import type { AccessControl } from '../access-control.js'
import { sessionOf, transportOf } from '../connection-context.js'
import { markDropped } from '../dropped.js'
import { GatewayError } from '../errors.js'
import { FloodTracker } from '../flood-tracker.js'
import type { UplinkSink } from '../uplink.js'

export interface AuthorizePublishDeps {
  access: AccessControl
  security: SecurityEvents
  logger: Logger
  uplink: UplinkSink
}

/**
 * Runs before aedes acknowledges a PUBLISH (aedes 1.x writes the QoS 1 PUBACK
 * only after this callback): policy, rate limits, then the hand-over to the
 * bridge, so a PUBACK means "held". A denied PUBLISH either closes the
 * connection or is acknowledged and dropped, as the policy says (MQTT-3.3.5-2).
 */
export function createAuthorizePublish(deps: AuthorizePublishDeps): AuthorizePublishHandler {
  const flood = new FloodTracker()
  return (client, packet, callback) => {
    // Messages the gateway itself publishes (no client) are authorized where they are made.
    if (!client) return callback(null)
    const { access, security } = deps
    const session = sessionOf(client)
    const bytes = packet.payload?.length ?? 0
    const fields = {
      ...(session && { device: session.device.id }),
      clientId: client.id,
      listener: transportOf(client).listener,
      topic: packet.topic,
      bytes,
      qos: packet.qos,
    }
    const drop = () => {
      markDropped(packet.payload)
      // A dropped message must not become the retained one either.
      packet.retain = false
      callback(null)
    }
    if (!session) {
      security.report(
        'publish_denied',
        { ...fields, reason: 'no_session' },
        'PUBLISH denied: not authenticated',
      )
      return callback(new GatewayError('GW_ERR_PUBLISH_DENIED', 'publish not authorized'))
    }

    const decision = access.engine.decide(session.principal, {
      action: 'publish',
      topic: packet.topic,
      qos: packet.qos,
      retain: packet.retain,
      payloadBytes: bytes,
    })
    if (!decision.allowed) {
      const mode = access.engine.policy.deniedPublish
      security.report(
        'publish_denied',
        {
          ...fields,
          reason: decision.reason,
          ...(decision.rule && { rule: decision.rule.label }),
          action: mode,
        },
        `PUBLISH denied (${decision.reason}): ${mode === 'drop' ? 'acknowledged and dropped' : 'connection closed'}`,
      )
      if (mode === 'drop') return drop()
      return callback(new GatewayError('GW_ERR_PUBLISH_DENIED', 'publish not authorized'))
    }

    if (decision.rule.rate) {
      const over = access.rateLimiter.check(session.device.id, decision.rule, bytes)
      if (over !== 'ok') {
        const limit = access.engine.policy.floodDisconnectAfter
        const flooding = flood.record(client, limit)
        security.report(
          flooding ? 'flood_disconnect' : 'rate_limited',
          { ...fields, rule: decision.rule.label, limit: over },
          flooding
            ? `device kept flooding (${limit} messages over its ${over} rate in 10 s): disconnected`
            : `PUBLISH over the ${over} rate limit: dropped`,
        )
        if (flooding) return callback(new GatewayError('GW_ERR_PUBLISH_DENIED', 'flooding'))
        return drop()
      }
    }

    const qos = packet.qos === 0 ? 0 : 1
    const payload =
      typeof packet.payload === 'string' ? Buffer.from(packet.payload) : Buffer.from(packet.payload)
    const result = deps.uplink.offer({
      topic: packet.topic,
      payload,
      qos,
      retain: packet.retain,
      deviceId: session.device.id,
      clientId: client.id,
      receivedAt: Date.now(),
    })
    if (result === 'full') {
      security.report(
        'uplink_queue_full',
        fields,
        qos === 0
          ? 'uplink queue full: QoS 0 message not forwarded to the cloud'
          : 'uplink queue full: QoS 1 message refused, connection closed so the device keeps and resends it',
      )
      if (qos === 1) return callback(new GatewayError('GW_ERR_UPLINK_FULL', 'uplink queue full'))
    }
    callback(null)
  }
}
