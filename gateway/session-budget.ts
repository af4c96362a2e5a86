import { LogLimiter } from '../core/log-limiter.js'
import type { Logger } from '../core/logger.js'
import { type Metrics, series } from '../core/metrics.js'

/** What the broker holds for a message: its topic and payload (the rest is small and fixed). */
interface HeldPacket {
  topic?: string
  payload?: Buffer | string
  messageId?: number
  /** A message's identity in the broker (a PUBREL that replaces it in the queue has none). */
  brokerId?: string
  brokerCounter?: number
}

const keyOf = (packet: HeldPacket) => `${packet.brokerId}\u0000${packet.brokerCounter}`

function sizeOf(packet: HeldPacket): number {
  const topic = packet.topic === undefined ? 0 : Buffer.byteLength(packet.topic)
  const payload = packet.payload === undefined ? 0 : Buffer.byteLength(packet.payload)
  return topic + payload
}

interface ClientHeld {
  /** Messages queued for it, by broker identity: their sizes. */
  outgoing: Map<string, number>
  /** The broker identity of a queued message once it has a packet identifier (sent at least once). */
  outgoingIds: Map<number, string>
  /** QoS 2 messages received and not yet released (PUBREL), by packet identifier: their sizes. */
  incoming: Map<number, number>
}

/**
 * Bounds what sessions make the broker keep in memory. aedes' session store keeps, per client id
 * and without bound, the QoS 1 and 2 messages queued for a subscriber (an offline persistent
 * session above all) and the QoS 2 messages received and awaiting their PUBREL. A review made
 * 1,000 persistent sessions of one device and ran the gateway out of heap within a minute, and
 * piled up QoS 2 messages that were never released across reconnects.
 *
 * Per client id at most `maxPerClient` queued messages, and at most `maxPerClient` QoS 2 messages
 * awaiting release; and for all of them together at most `maxBytes` of topics and payloads. A
 * message for a subscriber past either is not queued for it (counted in
 * `lan_session_dropped_total{reason}`, logged at warn, a few lines per client id), as Mosquitto's
 * max_queued_messages does; a QoS 2 message past either is refused, and the connection closed.
 */
export class SessionBudget {
  private readonly clients = new Map<string, ClientHeld>()
  private held = 0
  private readonly lines = new LogLimiter(5)

  constructor(
    readonly maxPerClient: number,
    readonly maxBytes: number,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
  ) {
    for (const reason of ['per_client', 'memory', 'qos2_per_client', 'qos2_memory'])
      metrics.declare(series('lan_session_dropped_total', { reason }))
  }

  /** Bytes of topics and payloads the sessions hold now. */
  get bytes(): number {
    return this.held
  }

  private of(clientId: string): ClientHeld {
    let c = this.clients.get(clientId)
    if (!c) {
      c = { outgoing: new Map(), outgoingIds: new Map(), incoming: new Map() }
      this.clients.set(clientId, c)
    }
    return c
  }

  private tidy(clientId: string, c: ClientHeld): void {
    if (c.outgoing.size === 0 && c.incoming.size === 0) this.clients.delete(clientId)
  }

  /** Whether `packet` may be queued for `clientId`; counts it if so. */
  admitOutgoing(clientId: string, packet: HeldPacket): boolean {
    const c = this.of(clientId)
    const bytes = sizeOf(packet)
    const reason =
      c.outgoing.size >= this.maxPerClient
        ? 'per_client'
        : this.held + bytes > this.maxBytes
          ? 'memory'
          : undefined
    if (reason) {
      this.tidy(clientId, c)
      this.dropped(reason, clientId, packet.topic)
      return false
    }
    c.outgoing.set(keyOf(packet), bytes)
    this.held += bytes
    return true
  }

  /**
   * Whether the store holds this update's message for `clientId`: a PUBLISH being sent (it
   * takes a packet identifier) or the PUBREL that replaces one. One the budget did not let in is
   * not in the store: its update is skipped, and the message is delivered live, not kept.
   */
  holds(clientId: string, packet: HeldPacket): boolean {
    const c = this.clients.get(clientId)
    if (!c) return false
    if (packet.brokerId === undefined)
      return packet.messageId !== undefined && c.outgoingIds.has(packet.messageId)
    const key = keyOf(packet)
    if (!c.outgoing.has(key)) return false
    if (packet.messageId !== undefined) c.outgoingIds.set(packet.messageId, key)
    return true
  }

  /** A queued message left (acknowledged, or the session emptied): `removed` is what the store gave back. */
  releaseOutgoing(clientId: string, removed: HeldPacket): void {
    const c = this.clients.get(clientId)
    if (!c) return
    const key =
      removed.brokerId !== undefined
        ? keyOf(removed)
        : removed.messageId !== undefined
          ? c.outgoingIds.get(removed.messageId)
          : undefined
    if (removed.messageId !== undefined) c.outgoingIds.delete(removed.messageId)
    const bytes = key === undefined ? undefined : c.outgoing.get(key)
    if (key !== undefined && bytes !== undefined) {
      c.outgoing.delete(key)
      this.held = Math.max(0, this.held - bytes)
    }
    this.tidy(clientId, c)
  }

  /** Whether a QoS 2 `packet` may be stored until its PUBREL; counts it if so. */
  admitIncoming(clientId: string, packet: HeldPacket): boolean {
    const c = this.of(clientId)
    const id = packet.messageId ?? 0
    const previous = c.incoming.get(id) ?? 0
    const bytes = sizeOf(packet)
    const reason =
      previous === 0 && c.incoming.size >= this.maxPerClient
        ? 'qos2_per_client'
        : this.held - previous + bytes > this.maxBytes
          ? 'qos2_memory'
          : undefined
    if (reason) {
      this.tidy(clientId, c)
      this.dropped(reason, clientId, packet.topic)
      return false
    }
    c.incoming.set(id, bytes)
    this.held += bytes - previous
    return true
  }

  releaseIncoming(clientId: string, messageId: number | undefined): void {
    const c = this.clients.get(clientId)
    const bytes = c?.incoming.get(messageId ?? 0)
    if (!c || bytes === undefined) return
    c.incoming.delete(messageId ?? 0)
    this.held = Math.max(0, this.held - bytes)
    this.tidy(clientId, c)
  }

  cleanIncoming(clientId: string): void {
    const c = this.clients.get(clientId)
    if (!c) return
    for (const bytes of c.incoming.values()) this.held = Math.max(0, this.held - bytes)
    c.incoming.clear()
    this.tidy(clientId, c)
  }

  private dropped(reason: string, clientId: string, topic: string | undefined): void {
    this.metrics.increment(series('lan_session_dropped_total', { reason }))
    const take = this.lines.take(`${reason}\u0000${clientId}`)
    if (!take) return
    const qos2 = reason.startsWith('qos2')
    this.logger.warn(
      {
        clientId: clientId.slice(0, 128),
        reason,
        ...(topic !== undefined && { topic: topic.slice(0, 256) }),
        maxPerClient: this.maxPerClient,
        maxBytes: this.maxBytes,
        heldBytes: this.held,
        ...(take.suppressed > 0 && { suppressed: take.suppressed }),
      },
      qos2
        ? `QoS 2 message not stored (session limit: ${reason}); the connection is closed`
        : `message not queued for ${clientId.slice(0, 128)} (session limit: ${reason})`,
    )
  }
}

/** The async session store inside aedes' default persistence (aedes-persistence), as far as it is used here. */
interface SessionStore {
  outgoingUpdate(client: { id: string }, packet: HeldPacket): Promise<void>
  outgoingEnqueue(sub: { clientId: string }, packet: HeldPacket): Promise<void>
  outgoingEnqueueCombi(subs: Array<{ clientId: string }>, packet: HeldPacket): Promise<void>
  outgoingClearMessageId(client: { id: string }, packet: HeldPacket): Promise<HeldPacket | undefined>
  incomingStorePacket(client: { id: string }, packet: HeldPacket): Promise<void>
  incomingDelPacket(client: { id: string }, packet: HeldPacket): Promise<void>
  cleanIncoming?(client: { id: string }): Promise<void>
}

/**
 * Puts `budget` in front of the session store of aedes' default persistence (`broker.persistence`,
 * whose methods delegate to `asyncPersistence`). Throws if that store is not there (another
 * persistence, or another aedes-persistence layout), rather than run unbounded.
 */
export function boundSessions(persistence: unknown, budget: SessionBudget): void {
  const store = (persistence as { asyncPersistence?: SessionStore }).asyncPersistence
  if (
    !store ||
    typeof store.outgoingEnqueueCombi !== 'function' ||
    typeof store.incomingStorePacket !== 'function'
  ) {
    throw new Error('aedes persistence without the expected session store: session memory cannot be bounded')
  }
  const enqueue = store.outgoingEnqueue.bind(store)
  const enqueueCombi = store.outgoingEnqueueCombi.bind(store)
  const clear = store.outgoingClearMessageId.bind(store)
  const update = store.outgoingUpdate.bind(store)
  const storeIncoming = store.incomingStorePacket.bind(store)
  const delIncoming = store.incomingDelPacket.bind(store)
  const cleanIncoming = store.cleanIncoming?.bind(store)
  store.outgoingEnqueue = async (sub, packet) => {
    if (budget.admitOutgoing(sub.clientId, packet)) await enqueue(sub, packet)
  }
  store.outgoingEnqueueCombi = async (subs, packet) => {
    const admitted = subs.filter((sub) => budget.admitOutgoing(sub.clientId, packet))
    if (admitted.length > 0) await enqueueCombi(admitted, packet)
  }
  // aedes updates a message in the store before it writes it to a persistent session's client,
  // and closes the connection if the store does not have it: one the budget kept out is skipped.
  store.outgoingUpdate = async (client, packet) => {
    if (budget.holds(client.id, packet)) await update(client, packet)
  }
  store.outgoingClearMessageId = async (client, packet) => {
    const removed = await clear(client, packet)
    if (removed) budget.releaseOutgoing(client.id, removed)
    return removed
  }
  store.incomingStorePacket = async (client, packet) => {
    if (!budget.admitIncoming(client.id, packet)) {
      throw new Error('session limit: QoS 2 message not stored (lan.sessions)')
    }
    await storeIncoming(client, packet)
  }
  store.incomingDelPacket = async (client, packet) => {
    await delIncoming(client, packet)
    budget.releaseIncoming(client.id, packet.messageId)
  }
  if (cleanIncoming) {
    store.cleanIncoming = async (client) => {
      await cleanIncoming(client)
      budget.cleanIncoming(client.id)
    }
  }
}
