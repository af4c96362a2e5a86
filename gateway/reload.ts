import type { Client } from 'aedes'
import type { Logger } from '../core/logger.js'
import type { SecurityEvents } from '../core/security-events.js'
import { SubscriberLimits } from '../policies/subscriber-limits.js'
import type { AccessControl, AccessSnapshot } from './access-control.js'
import { principalFor, sessionOf, setSession } from './connection-context.js'

export interface ReloadReport {
  devicesRemoved: number
  subscriptionsRevoked: number
  clientsKept: number
}

function subscriptionsOf(client: Client): string[] {
  return Object.keys((client as unknown as { subscriptions: Record<string, unknown> }).subscriptions ?? {})
}

function unsubscribe(client: Client, topics: string[]): Promise<void> {
  return new Promise((resolve) => {
    const c = client as unknown as { unsubscribe(topics: string[], done: () => void): void }
    c.unsubscribe(topics, () => resolve())
  })
}

/**
 * Swaps in a new registry and policy, then brings every connection in line:
 * devices that no longer exist are disconnected; subscriptions the new policy
 * forbids are removed (and `authorizeForward` already stops their deliveries);
 * everything else stays connected. Subscriber counts are rebuilt for the new rules.
 */
export async function applyAccess(
  access: AccessControl,
  next: AccessSnapshot,
  clients: ReadonlyArray<Client>,
  security: SecurityEvents,
  logger: Logger,
): Promise<ReloadReport> {
  access.replace(next)
  const limits = new SubscriberLimits()
  const report: ReloadReport = { devicesRemoved: 0, subscriptionsRevoked: 0, clientsKept: 0 }
  for (const client of clients) {
    const session = sessionOf(client)
    if (!session) continue
    const device = next.registry.byDeviceId(session.device.id)
    if (!device) {
      report.devicesRemoved++
      security.report(
        'device_removed',
        { device: session.device.id, clientId: client.id },
        'device no longer configured: disconnected',
      )
      client.close()
      continue
    }
    const principal = principalFor(device, client.id, session.principal.username)
    setSession(client, { ...session, device, principal })
    const revoked: string[] = []
    for (const topic of subscriptionsOf(client)) {
      const decision = next.engine.decide(principal, { action: 'subscribe', topic, qos: 0 })
      if (!decision.allowed) revoked.push(topic)
      else if (decision.rule.maxSubscribers !== undefined) {
        // Existing subscribers keep their place even past a lowered limit; new ones wait for slots.
        limits.tryAdd(decision.rule.index, topic, client.id, Number.MAX_SAFE_INTEGER)
      }
    }
    if (revoked.length > 0) {
      await unsubscribe(client, revoked)
      report.subscriptionsRevoked += revoked.length
      for (const topic of revoked) {
        security.report(
          'subscription_revoked',
          { device: device.id, clientId: client.id, topic },
          'subscription no longer allowed by the new policy: removed',
        )
      }
    }
    report.clientsKept++
  }
  access.subscriberLimits = limits
  logger.info(report, 'access policy reloaded')
  return report
}
