import type { AuthorizePublishHandler, Client, PublishPacket } from 'aedes'
import type { Logger } from '../../core/logger.js'
import { type Metrics, series } from '../../core/metrics.js'
import type { SecurityEvents } from '../../core/security-events.js'
import type { AccessControl } from '../access-control.js'
import { type CloseReason, setCloseReason } from '../close-reason.js'
import { type DeviceSession, sessionOf, transportOf } from '../connection-context.js'
import { markDropped } from '../dropped.js'
import { GatewayError, type GatewayErrorCode } from '../errors.js'
import { FloodTracker } from '../flood-tracker.js'
import { isOpened, markOpened } from '../protection/opened.js'
import type { ProtectionMode } from '../protection/requirements.js'
import type { ProtectionRuntime } from '../protection/runtime.js'
import type { RetainedLimit } from '../retained-limit.js'
import type { OfferRefusal, UplinkSink } from '../uplink.js'
import { type Holdable, paceDevice } from './pace-device.js'

export interface AuthorizePublishDeps {
  access: AccessControl
  security: SecurityEvents
  logger: Logger
  metrics: Metrics
  uplink: UplinkSink
  protection: ProtectionRuntime
  /** Bounds retained messages (lan.retained). */
  retained: RetainedLimit
}

const UPLINK_FAILURE_LINES = 10

/** A disconnect says why, for the log line of the disconnect (close-reason.ts). */
type Outcome = 'forward' | 'drop' | { disconnect: string; code?: GatewayErrorCode; why: CloseReason }

/**
 * Runs before aedes acknowledges a PUBLISH (aedes 1.x writes the QoS 1 PUBACK
 * only after this callback), as named steps: policy, the rule's rate limits, the
 * device's own rate (lan.deviceRate, as back-pressure), payload protection, hand-over to the bridge.
 * A PUBACK therefore means "allowed, opened, fresh, and held". A denied PUBLISH either closes the connection or
 * is acknowledged and dropped, as the policy says (MQTT-3.3.5-2).
 */
export function createAuthorizePublish(deps: AuthorizePublishDeps): AuthorizePublishHandler {
  const rateFlood = new FloodTracker()
  const payloadFlood = new FloodTracker()
  // Log lines of uplink failures: at most UPLINK_FAILURE_LINES per event each 10 s (the bridge counts them all).
  const uplinkFailures = new FloodTracker()
  const failureKeys = { uplink_queue_io_error: {}, uplink_forwarding_stopped: {} }

  function fieldsOf(client: Client, session: DeviceSession | undefined, packet: PublishPacket) {
    return {
      ...(session && { device: session.device.id }),
      clientId: client.id,
      listener: transportOf(client).listener,
      topic: packet.topic,
      bytes: packet.payload?.length ?? 0,
      qos: packet.qos,
    }
  }

  function applyPolicy(client: Client, session: DeviceSession, packet: PublishPacket): Outcome {
    const { access, security } = deps
    // The log fields are built only for a report: nothing per message on the path that forwards.
    const bytes = packet.payload?.length ?? 0
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
          ...fieldsOf(client, session, packet),
          reason: decision.reason,
          ...(decision.rule && { rule: decision.rule.label }),
          action: mode,
        },
        `PUBLISH denied (${decision.reason}): ${mode === 'drop' ? 'acknowledged and dropped' : 'connection closed'}`,
      )
      return mode === 'drop'
        ? 'drop'
        : {
            disconnect: 'publish not authorized',
            why: {
              reason: 'publish_denied',
              detail: `PUBLISH to ${packet.topic} denied (${decision.reason})`,
              topic: packet.topic,
              denied: decision.reason,
            },
          }
    }
    if (packet.retain && !deps.retained.admit(packet.topic, bytes)) {
      // Delivered, not retained: the broker's memory for retained messages is bounded.
      packet.retain = false
      security.report(
        'retained_limit',
        {
          ...fieldsOf(client, session, packet),
          maxMessages: deps.retained.maxMessages,
          maxBytes: deps.retained.maxBytes,
        },
        `retained PUBLISH over the limit (${deps.retained.maxMessages} messages, ${deps.retained.maxBytes} bytes): delivered, not retained`,
      )
    }
    if (decision.rule.rate) {
      const over = access.rateLimiter.check(session.device.id, decision.rule, bytes)
      if (over !== 'ok') return overRate(client, fieldsOf(client, session, packet), decision.rule.label, over)
    }
    return 'forward'
  }

  /**
   * The device's own rate (lan.deviceRate), over all its topics and connections: a PUBLISH
   * past it waits for its turn before anything else is done with it, which holds back the
   * next read of the connection (back-pressure; nothing is dropped). Logged as
   * `device_rate_paced` (the security log's limiter keeps it to a few lines per device).
   */
  function pace(client: Client, session: DeviceSession, packet: PublishPacket): Promise<Outcome> | undefined {
    const held = paceDevice(
      deps.access.devicePacer,
      deps.security,
      session.device.id,
      () => fieldsOf(client, session, packet),
      'PUBLISH',
      client.conn as Partial<Holdable>,
    )
    // Gone while it waited: no PUBACK can reach it, so a QoS 1 message comes again on its next connection.
    return held?.then(() => ((client as Client & { closed?: boolean }).closed ? 'drop' : 'forward'))
  }

  /**
   * A PUBLISH over a rule's rate: acknowledged
   * and dropped (`rate_limited`); past floodDisconnectAfter such messages in 10 s the
   * connection is closed (`flood_disconnect`). Both kinds count together.
   */
  function overRate(
    client: Client,
    fields: ReturnType<typeof fieldsOf>,
    rule: string,
    over: string,
  ): Outcome {
    const limit = deps.access.engine.policy.floodDisconnectAfter
    const count = rateFlood.record(client)
    const flooding = count > limit
    deps.security.report(
      flooding ? 'flood_disconnect' : 'rate_limited',
      { ...fields, rule, limit: over },
      flooding
        ? `device kept flooding (${limit} messages over its ${over} rate in 10 s): disconnected`
        : `PUBLISH over the ${over} rate limit: dropped`,
    )
    if (!flooding) return 'drop'
    return {
      disconnect: 'flooding',
      why: {
        reason: 'flooding',
        detail: `${count} messages over its ${over} rate within 10 s (limit ${limit})`,
        limit,
        count,
        rule,
      },
    }
  }

  /** Opens a payload whose topic requires protection (`mode`, not none) and that is not opened yet. */
  async function openPayload(
    client: Client,
    session: DeviceSession,
    packet: PublishPacket,
    mode: Exclude<ProtectionMode, 'none'>,
  ): Promise<Outcome> {
    const bytes = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload)
    const result = await deps.protection.opener.open(
      deps.access.registry,
      session.device,
      mode,
      bytes,
      packet.topic,
    )
    if (result.ok) {
      packet.payload = result.plaintext
      markOpened(result.plaintext)
      return 'forward'
    }
    deps.metrics.increment(series('payload_rejected_total', { reason: result.failure }))
    const limit = deps.protection.failuresBeforeDisconnect
    const count = payloadFlood.record(client)
    const persistent = count > limit
    deps.security.report(
      'payload_rejected',
      { ...fieldsOf(client, session, packet), mode, reason: result.failure },
      persistent
        ? `${mode} payload refused (${result.failure}), ${count} refused within 10 s (limit ${limit}): disconnected`
        : `${mode} payload refused (${result.failure}): dropped`,
    )
    if (!persistent) return 'drop'
    return {
      disconnect: 'payload failures',
      why: {
        reason: 'payload_failures',
        detail: `${count} refused payloads within 10 s (limit ${limit}); the last: ${result.failure}`,
        limit,
        count,
        last: result.failure,
      },
    }
  }

  /**
   * The bridge could not hold the message (it rejected): the disk failed (QUEUE_ERR_IO,
   * event `uplink_queue_io_error` with the errno), or forwarding was given up
   * (BRIDGE_ERR_FORWARDING_STOPPED, event `uplink_forwarding_stopped`). Logged at error,
   * not as a security event (nobody on the LAN caused it), at most 10 lines per event
   * each 10 s; the bridge counts each in uplink_dropped_total. A QoS 1 message gets no
   * PUBACK and the connection closes, so the device keeps it; a QoS 0 one still goes to
   * LAN subscribers.
   */
  function uplinkFailed(
    client: Client,
    session: DeviceSession,
    packet: PublishPacket,
    qos: 0 | 1,
    err: unknown,
  ): Outcome {
    const code = (err as { code?: unknown }).code
    if (code !== 'QUEUE_ERR_IO' && code !== 'BRIDGE_ERR_FORWARDING_STOPPED') throw err
    const io = code === 'QUEUE_ERR_IO'
    const event = io ? 'uplink_queue_io_error' : 'uplink_forwarding_stopped'
    const cause = (err as { cause?: NodeJS.ErrnoException }).cause
    if (uplinkFailures.record(failureKeys[event]) <= UPLINK_FAILURE_LINES) {
      deps.logger.error(
        {
          event,
          ...fieldsOf(client, session, packet),
          ...(io ? { code: cause?.code, errno: cause?.errno, syscall: cause?.syscall } : { code }),
          err,
        },
        io
          ? `uplink queue I/O error (${cause?.code ?? 'unknown'}): ${qos === 0 ? 'QoS 0 message not forwarded to the cloud' : 'QoS 1 message refused, connection closed so the device keeps and resends it'}`
          : `uplink forwarding stopped: ${qos === 0 ? 'QoS 0 message not forwarded to the cloud' : 'QoS 1 message refused, connection closed so the device keeps and resends it'}`,
      )
    }
    if (qos === 0) return 'forward'
    const detail = io
      ? `the uplink queue could not store it (${cause?.code ?? 'I/O error'}); the device keeps its QoS 1 message`
      : 'uplink forwarding stopped; the device keeps its QoS 1 message'
    return {
      disconnect: io ? 'uplink queue I/O error' : 'uplink forwarding stopped',
      why: { reason: io ? 'uplink_io_error' : 'uplink_stopped', detail },
    }
  }

  async function handOver(client: Client, session: DeviceSession, packet: PublishPacket): Promise<Outcome> {
    const qos = packet.qos === 0 ? 0 : 1
    // A copy: aedes' payload may be a view into the connection's read buffer.
    const payload = Buffer.from(packet.payload)
    let result: Awaited<ReturnType<AuthorizePublishDeps['uplink']['offer']>>
    try {
      result = await deps.uplink.offer({
        topic: packet.topic,
        payload,
        qos,
        retain: packet.retain,
        deviceId: session.device.id,
        clientId: client.id,
        receivedAt: Date.now(),
      })
    } catch (err) {
      return uplinkFailed(client, session, packet, qos, err)
    }
    if (typeof result === 'object') return refusedByBridge(client, session, packet, qos, result)
    if (result !== 'full') return 'forward'
    deps.security.report(
      'uplink_queue_full',
      fieldsOf(client, session, packet),
      qos === 0
        ? 'uplink queue full: QoS 0 message not forwarded to the cloud'
        : 'uplink queue full: QoS 1 message refused, connection closed so the device keeps and resends it',
    )
    if (qos === 0) return 'forward'
    return {
      disconnect: 'uplink queue full',
      code: 'GW_ERR_UPLINK_FULL',
      why: { reason: 'uplink_full', detail: 'the uplink queue is full; the device keeps its QoS 1 message' },
    }
  }

  /**
   * The bridge refused the message:
   * - device_quota: the device holds more than its share of the queue (the flooder is refused
   *   first): event `uplink_queue_full` with `reason: device_quota`; QoS 1 gets no PUBACK and
   *   the connection closes so the device keeps it, QoS 0 still goes to LAN subscribers.
   * - unsendable: the cloud could never take it as mapped: a denied PUBLISH (`publish_denied`,
   *   `reason: unsendable`), closed or acknowledged and dropped as `deniedPublish` says.
   */
  function refusedByBridge(
    client: Client,
    session: DeviceSession,
    packet: PublishPacket,
    qos: 0 | 1,
    refusal: OfferRefusal,
  ): Outcome {
    const fields = { ...fieldsOf(client, session, packet), reason: refusal.refused, detail: refusal.detail }
    if (refusal.refused === 'unsendable') {
      const mode = deps.access.engine.policy.deniedPublish
      deps.security.report(
        'publish_denied',
        { ...fields, action: mode },
        `PUBLISH denied (the cloud could not take it: ${refusal.detail}): ${mode === 'drop' ? 'acknowledged and dropped' : 'connection closed'}`,
      )
      if (mode === 'drop') return 'drop'
      return {
        disconnect: 'publish not sendable to the cloud',
        why: {
          reason: 'publish_denied',
          detail: `PUBLISH to ${packet.topic} denied (unsendable: ${refusal.detail})`,
          topic: packet.topic,
          denied: 'unsendable',
        },
      }
    }
    deps.security.report(
      'uplink_queue_full',
      fields,
      qos === 0
        ? `device over its share of the uplink queue: QoS 0 message not forwarded to the cloud (${refusal.detail})`
        : `device over its share of the uplink queue: QoS 1 message refused, connection closed so the device keeps and resends it (${refusal.detail})`,
    )
    if (qos === 0) return 'forward'
    return {
      disconnect: 'device over its uplink queue share',
      code: 'GW_ERR_UPLINK_FULL',
      why: { reason: 'uplink_device_quota', detail: `${refusal.detail}; the device keeps its QoS 1 message` },
    }
  }

  /**
   * The steps in order. A step that has nothing to wait for (the policy; a device within its
   * rate; a topic without payload protection) runs on at once rather than through a promise.
   */
  async function authorize(client: Client, session: DeviceSession, packet: PublishPacket): Promise<Outcome> {
    const policy = applyPolicy(client, session, packet)
    if (policy !== 'forward') return policy
    const held = pace(client, session, packet)
    if (held) {
      const paced = await held
      if (paced !== 'forward') return paced
    }
    const mode = deps.protection.requirements.modeFor(packet.topic)
    if (mode !== 'none' && !isOpened(packet.payload)) {
      const opened = await openPayload(client, session, packet, mode)
      if (opened !== 'forward') return opened
    }
    return handOver(client, session, packet)
  }

  return (client, packet, callback) => {
    // Messages the gateway itself publishes (no client) are authorized where they are made.
    if (!client) return callback(null)
    const session = sessionOf(client)
    if (!session) {
      deps.security.report(
        'publish_denied',
        { ...fieldsOf(client, undefined, packet), reason: 'no_session' },
        'PUBLISH denied: not authenticated',
      )
      return callback(new GatewayError('GW_ERR_PUBLISH_DENIED', 'publish not authorized'))
    }
    authorize(client, session, packet).then(
      (outcome) => {
        if (outcome === 'forward') return callback(null)
        if (outcome === 'drop') {
          markDropped(packet.payload)
          // A dropped message must not become the retained one either.
          packet.retain = false
          return callback(null)
        }
        setCloseReason(client, outcome.why)
        callback(new GatewayError(outcome.code ?? 'GW_ERR_PUBLISH_DENIED', outcome.disconnect))
      },
      (err: unknown) => {
        deps.logger.error(
          { err, clientId: client.id },
          'publish authorization failed internally; connection closed',
        )
        setCloseReason(client, {
          reason: 'internal_error',
          detail: 'publish authorization failed internally',
        })
        callback(new GatewayError('GW_ERR_PUBLISH_DENIED', 'internal error'))
      },
    )
  }
}
