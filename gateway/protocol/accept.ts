import type { Duplex } from 'node:stream'
import type { Aedes, Client } from 'aedes'
import type { Logger } from '../../core/logger.js'
import { type Metrics, series } from '../../core/metrics.js'
import type { SecurityEvents } from '../../core/security-events.js'
import { setCloseReason } from '../close-reason.js'
import { sessionOf, setTransport, type TransportContext } from '../connection-context.js'
import type { Admission } from '../listeners/admission.js'
import { type GuardLimits, ProtocolGuard } from './guard.js'
import { CONNECTION_ERRORS, PROTOCOL_VIOLATIONS, type ProtocolViolation } from './violations.js'

export interface AcceptDeps {
  broker: Aedes
  limits: GuardLimits
  security: SecurityEvents
  metrics: Metrics
  logger: Logger
  /** Its slot is given back once the client is authenticated. */
  admission: Admission
}

/** Hands a connection whose transport is established (TCP, or TLS after its handshake) to the broker. */
export type Accept = (socket: Duplex, transport: TransportContext) => void

export const protocolErrorSeries = (reason: string) => series('lan_protocol_errors_total', { reason })

/**
 * Puts a ProtocolGuard between each connection and the broker, counts and logs
 * what it refuses, and lets it through to full packet size once the broker has
 * authenticated the client.
 */
export function createAccept(deps: AcceptDeps): Accept {
  const { broker, limits, security, metrics, logger, admission } = deps
  for (const reason of [...PROTOCOL_VIOLATIONS, ...CONNECTION_ERRORS])
    metrics.declare(protocolErrorSeries(reason))
  /** The admission slot of each connection: its address and port. */
  const slots = new WeakMap<ProtocolGuard, [string, number | undefined]>()
  broker.on('clientReady', (client: Client) => {
    if (!(client.conn instanceof ProtocolGuard)) return
    client.conn.authenticated()
    const slot = slots.get(client.conn)
    if (slot) admission.release(...slot)
  })
  return (socket, transport) => {
    const guard: ProtocolGuard = new ProtocolGuard(socket, limits, (violation) =>
      report(violation, transport, (guard as unknown as { client?: Client }).client),
    )
    slots.set(guard, [transport.remoteAddress, (socket as { remotePort?: number }).remotePort])
    setTransport(guard, transport)
    broker.handle(guard)
  }

  function report(violation: ProtocolViolation, transport: TransportContext, client: Client | undefined) {
    metrics.increment(protocolErrorSeries(violation.reason))
    const session = sessionOf(client)
    // The disconnect line of an authenticated device says why the gateway closed it.
    if (client && session)
      setCloseReason(client, {
        reason: violation.reason,
        detail: `${violation.packetType}: ${violation.detail}`,
      })
    const fields = {
      ...(session && { device: session.device.id }),
      ...(client?.id && { clientId: client.id }),
      listener: transport.listener,
      remoteAddress: transport.remoteAddress,
      ...(transport.pskIdentity !== undefined && { pskIdentity: transport.pskIdentity }),
      reason: violation.reason,
      packetType: violation.packetType,
      ...(violation.announcedBytes !== undefined && { bytes: violation.announcedBytes }),
      ...(violation.limit !== undefined && { limit: violation.limit }),
    }
    if (violation.reason === 'unsupported_protocol_level') {
      logger.warn(
        { event: 'protocol_refused', ...fields },
        `CONNECT refused with CONNACK 1: ${violation.detail}; the gateway speaks MQTT 3.1.1 and 3.1`,
      )
    } else if (violation.reason === 'packet_too_large' || violation.reason === 'connect_too_large') {
      security.report(
        'packet_too_large',
        fields,
        `MQTT ${violation.packetType} refused on its header: ${violation.detail}; connection closed`,
      )
    } else if (violation.reason === 'slow_consumer') {
      security.report(
        'slow_consumer',
        fields,
        `slow consumer: ${violation.detail}; connection closed, so that delivery to others does not wait on it`,
      )
    } else {
      security.report(
        'protocol_violation',
        fields,
        `MQTT protocol violation: ${violation.packetType}: ${violation.detail}; connection closed without a reply`,
      )
    }
  }
}
