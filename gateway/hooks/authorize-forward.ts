import type { AedesPublishPacket, AuthorizeForwardHandler } from 'aedes'
import { type Metrics, series } from '../../core/metrics.js'
import type { SecurityEvents } from '../../core/security-events.js'
import { seal } from '../../crypto/encrypt0.js'
import { macProtect } from '../../crypto/mac0.js'
import type { AccessControl } from '../access-control.js'
import { sessionOf } from '../connection-context.js'
import { isDropped } from '../dropped.js'
import type { ProtectionRuntime } from '../protection/runtime.js'
import { deliveryKeysFor } from '../registry.js'

/**
 * At delivery: re-checks read permission (so a subscription made under an
 * older policy stops receiving the moment the policy changes), withholds
 * messages the gateway acknowledged-and-dropped, and protects the payload for
 * the receiving device when its topic is sealed or MAC'd (gateway-to-device key).
 */
export function createAuthorizeForward(deps: {
  access: AccessControl
  security: SecurityEvents
  metrics: Metrics
  protection: ProtectionRuntime
}): AuthorizeForwardHandler {
  return (client, packet) => {
    if (isDropped(packet.payload)) return null
    const session = sessionOf(client)
    const decision = session
      ? deps.access.engine.decide(session.principal, {
          action: 'subscribe',
          topic: packet.topic,
          qos: packet.qos as 0 | 1 | 2,
        })
      : undefined
    if (!session || !decision?.allowed) {
      deps.security.report(
        'forward_denied',
        {
          ...(session && { device: session.device.id }),
          clientId: client.id,
          topic: packet.topic,
          bytes: packet.payload?.length ?? 0,
          reason: decision && !decision.allowed ? decision.reason : 'no_session',
        },
        'delivery withheld: the device may not read this topic',
      )
      return null
    }
    const mode = deps.protection.requirements.modeFor(packet.topic)
    if (mode !== 'sealed' && mode !== 'mac') return packet
    const keys = deliveryKeysFor(session.device, deps.protection.lastKid.get(session.device.id))
    if (!keys) {
      deps.metrics.increment(series('downlink_withheld_total', { reason: 'no_payload_key' }))
      deps.security.report(
        'forward_denied',
        { device: session.device.id, clientId: client.id, topic: packet.topic, reason: 'no_payload_key' },
        `delivery withheld: ${mode} topic and the device has no payload key`,
      )
      return null
    }
    const plaintext = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload)
    const seq = deps.protection.sequence.take()
    if (seq === undefined) {
      // No durably reserved number: sealing without one could reuse a nonce after a crash.
      deps.metrics.increment('downlink_withheld_total{reason="sequence_unavailable"}')
      return null
    }
    const payload =
      mode === 'sealed'
        ? seal(keys.context, 'gateway-to-device', seq, plaintext, packet.topic)
        : macProtect(keys.context, 'gateway-to-device', seq, plaintext, packet.topic)
    return { ...packet, payload } as AedesPublishPacket
  }
}
