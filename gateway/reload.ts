import type { Client } from 'aedes'
import type { SecurityEvents } from '../core/security-events.js'
import { SubscriberLimits } from '../policies/subscriber-limits.js'
import type { AccessControl, AccessSnapshot } from './access-control.js'
import { setCloseReason } from './close-reason.js'
import { principalFor, sessionOf, setSession } from './connection-context.js'
import type { CertificateReload } from './listeners/listener.js'

export interface ReloadReport {
  /** Device ids in the new registry that the old one did not have, sorted. */
  devicesAdded: string[]
  /** Device ids the old registry had and the new one does not, sorted. */
  devicesRemoved: string[]
  /** Devices configured after the reload. */
  devices: number
  /** Connections closed because their device was removed. */
  clientsDisconnected: number
  subscriptionsRevoked: number
  clientsKept: number
  /** Connections closed because the PSK identity they used is no longer the device's (psk_retired). */
  pskConnectionsClosed: number
  /** Listeners with a certificate: what each serves after the reload (see LanGateway.reload). */
  certificates: CertificateReload[]
  /** Listeners whose new certificate files were refused: they serve the old ones. */
  certificateErrors: Array<{ listener: string; error: string }>
}

function idsOf(registry: AccessSnapshot['registry']): Set<string> {
  return new Set([...registry.devices()].map((d) => d.id))
}

const sorted = (ids: Iterable<string>) => [...ids].sort()

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
 * The caller logs the report (one line per reload).
 */
export async function applyAccess(
  access: AccessControl,
  next: AccessSnapshot,
  clients: ReadonlyArray<Client>,
  security: SecurityEvents,
): Promise<ReloadReport> {
  const before = idsOf(access.registry)
  const after = idsOf(next.registry)
  access.replace(next)
  const limits = new SubscriberLimits()
  const report: ReloadReport = {
    devicesAdded: sorted([...after].filter((id) => !before.has(id))),
    devicesRemoved: sorted([...before].filter((id) => !after.has(id))),
    devices: after.size,
    clientsDisconnected: 0,
    subscriptionsRevoked: 0,
    clientsKept: 0,
    pskConnectionsClosed: 0,
    certificates: [],
    certificateErrors: [],
  }
  for (const client of clients) {
    const session = sessionOf(client)
    if (!session) continue
    const device = next.registry.byDeviceId(session.device.id)
    if (!device) {
      report.clientsDisconnected++
      security.report(
        'device_removed',
        { device: session.device.id, clientId: client.id },
        'device no longer configured: disconnected',
      )
      setCloseReason(client, { reason: 'device_removed', detail: 'the device is no longer configured' })
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
  return report
}
