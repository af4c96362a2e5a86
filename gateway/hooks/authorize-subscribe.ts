import type { AuthorizeSubscribeHandler, Client } from 'aedes'
import type { SecurityEvents } from '../../core/security-events.js'
import type { AccessControl } from '../access-control.js'
import { sessionOf, transportOf } from '../connection-context.js'

/**
 * Filters granted in SUBSCRIBE packets aedes has not stored yet (it adds a
 * packet's subscriptions to `client.subscriptions` after authorizing all of them).
 */
const inFlight = new WeakMap<Client, Set<string>>()

/** Whether `client` may hold one more filter (`topic`, unless it holds it already); counts it if so. */
function withinSubscriptionLimit(client: Client, topic: string, max: number): boolean {
  const held = (client as unknown as { subscriptions?: Record<string, unknown> }).subscriptions ?? {}
  if (Object.hasOwn(held, topic)) return true
  let pending = inFlight.get(client)
  if (pending?.has(topic)) return true
  // aedes may store a filter before it authorizes the next one of the same packet: count it once.
  if (pending) for (const t of pending) if (Object.hasOwn(held, t)) pending.delete(t)
  if (Object.keys(held).length + (pending?.size ?? 0) >= max) return false
  if (!pending) {
    pending = new Set()
    inFlight.set(client, pending)
  }
  pending.add(topic)
  return true
}

/** aedes stored a SUBSCRIBE's filters (its `subscribe` event): they count through `client.subscriptions` now. */
export function subscriptionsStored(client: Client): void {
  inFlight.delete(client)
}

/**
 * A SUBSCRIBE the policy forbids is refused at SUBACK (0x80) for that filter;
 * the other filters in the packet still stand. An allowed one is granted at
 * most at the rule's QoS, and counts against the rule's subscriber limit.
 */
export function createAuthorizeSubscribe(deps: {
  access: AccessControl
  security: SecurityEvents
  /** Topic filters one client may hold at once (`lan.maxSubscriptionsPerClient`). */
  maxSubscriptions: number
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
    // Counted before the subscriber limit, so a refusal here takes no subscriber slot.
    if (!withinSubscriptionLimit(client, subscription.topic, deps.maxSubscriptions)) {
      security.report(
        'subscription_limit',
        { ...fields, maxSubscriptions: deps.maxSubscriptions },
        `SUBSCRIBE refused: the client holds ${deps.maxSubscriptions} subscription(s) already`,
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
