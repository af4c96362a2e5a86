import type { AuthorizeSubscribeHandler } from 'aedes'
import type { SecurityEvents } from '../../core/security-events.js'
import type { AccessControl } from '../access-control.js'
import { sessionOf, transportOf } from '../connection-context.js'

/**
 * A SUBSCRIBE the policy forbids is refused at SUBACK (0x80) for that filter;
 * the other filters in the packet still stand. An allowed one is granted at
 * most at the rule's QoS, and counts against the rule's subscriber limit.
 */
export function createAuthorizeSubscribe(deps: {
  access: AccessControl
  security: SecurityEvents
}): AuthorizeSubscribeHandler {
  return (client, subscription, callback) => {
    const { access, security } = deps
    const session = sessionOf(client)
    const fields = {
      ...(session && { device: session.device.id }),
      clientId: client.id,
      listener: transportOf(client).listener,
      topic: subscription.topic,
      qos: subscription.qos,
    }
    if (!session) {
      security.report(
        'subscribe_denied',
        { ...fields, reason: 'no_session' },
        'SUBSCRIBE denied: not authenticated',
      )
      return callback(null, null)
    }
    const decision = access.engine.decide(session.principal, {
      action: 'subscribe',
      topic: subscription.topic,
      qos: subscription.qos as 0 | 1 | 2,
    })
    if (!decision.allowed) {
      security.report(
        'subscribe_denied',
        { ...fields, reason: decision.reason, ...(decision.rule && { rule: decision.rule.label }) },
        `SUBSCRIBE denied (${decision.reason}): SUBACK 0x80`,
      )
      return callback(null, null)
    }
    const max = decision.rule.maxSubscribers
    if (
      max !== undefined &&
      !access.subscriberLimits.tryAdd(decision.rule.index, subscription.topic, client.id, max)
    ) {
      security.report(
        'subscriber_limit',
        { ...fields, rule: decision.rule.label, maxSubscribers: max },
        `SUBSCRIBE refused: ${max} subscriber(s) already on this filter`,
      )
      return callback(null, null)
    }
    callback(null, { ...subscription, qos: decision.grantedQos })
  }
}
