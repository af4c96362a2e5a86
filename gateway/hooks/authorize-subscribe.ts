import type { AuthorizeSubscribeHandler, Client } from 'aedes'
import type { SecurityEventFields, SecurityEvents } from '../../core/security-events.js'
import type { AccessControl } from '../access-control.js'
import { sessionOf, transportOf } from '../connection-context.js'
import { type Holdable, paceDevice } from './pace-device.js'

/**
 * The filters each client holds, as far as the limit is concerned: every filter granted
 * here (seeded from `client.subscriptions` the first time, for a restored session), less
 * those it unsubscribed from. O(1) per filter, so a SUBSCRIBE of a thousand filters costs
 * a thousand look-ups, not a thousand walks of what the client holds. A filter granted
 * here that aedes did not store after all stays counted: the limit errs on the safe side.
 */
const held = new WeakMap<Client, Set<string>>()

function heldBy(client: Client): Set<string> {
  let topics = held.get(client)
  if (!topics) {
    const stored = (client as unknown as { subscriptions?: Record<string, unknown> }).subscriptions ?? {}
    topics = new Set(Object.keys(stored))
    held.set(client, topics)
  }
  return topics
}

/** Whether `client` may hold one more filter (`topic`, unless it holds it already); counts it if so. */
function withinSubscriptionLimit(client: Client, topic: string, max: number): boolean {
  const topics = heldBy(client)
  if (topics.has(topic)) return true
  if (topics.size >= max) return false
  topics.add(topic)
  return true
}

/** The client unsubscribed (aedes' `unsubscribe` event, also for revocations at reload): room for others. */
export function subscriptionsRemoved(client: Client, topics: ReadonlyArray<string>): void {
  const set = held.get(client)
  if (set) for (const topic of topics) set.delete(topic)
}

/**
 * A SUBSCRIBE the policy forbids is refused at SUBACK (0x80) for that filter;
 * the other filters in the packet still stand. An allowed one is granted at
 * most at the rule's QoS, and counts against the rule's subscriber limit.
 * Each filter takes a turn of the device's rate (lan.deviceRate) first, as a
 * PUBLISH does: a client that sends SUBSCRIBEs of thousands of filters is held
 * to the rate by back-pressure, and costs the gateway no more than that.
 */
export function createAuthorizeSubscribe(deps: {
  access: AccessControl
  security: SecurityEvents
  /** Topic filters one client may hold at once (`lan.maxSubscriptionsPerClient`). */
  maxSubscriptions: number
}): AuthorizeSubscribeHandler {
  function refuseOverLimit(
    fields: SecurityEventFields,
    callback: Parameters<AuthorizeSubscribeHandler>[2],
  ): void {
    deps.security.report(
      'subscription_limit',
      { ...fields, maxSubscriptions: deps.maxSubscriptions },
      `SUBSCRIBE refused: the client holds ${deps.maxSubscriptions} subscription(s) already`,
    )
    callback(null, null)
  }

  const decide: AuthorizeSubscribeHandler = (client, subscription, callback) => {
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
    // At the limit already: refused before the policy is asked (the cheap path for a client that keeps asking).
    const topics = heldBy(client)
    if (topics.size >= deps.maxSubscriptions && !topics.has(subscription.topic)) {
      return refuseOverLimit(fields, callback)
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
      return refuseOverLimit(fields, callback)
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

  return (client, subscription, callback) => {
    const session = sessionOf(client)
    if (!session) return decide(client, subscription, callback)
    const held = paceDevice(
      deps.access.devicePacer,
      deps.security,
      session.device.id,
      () => ({ clientId: client.id, listener: transportOf(client).listener, topic: subscription.topic }),
      'SUBSCRIBE filter',
      client.conn as Partial<Holdable>,
    )
    if (!held) return decide(client, subscription, callback)
    held.then(() => decide(client, subscription, callback))
  }
}
