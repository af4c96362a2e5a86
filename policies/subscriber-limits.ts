/**
 * Counts the distinct clients subscribed to each (rule, concrete filter), for
 * a rule's `maxSubscribers`. A client subscribing to the same filter again
 * holds one slot; a client that leaves frees all of its slots.
 */
export class SubscriberLimits {
  /** `${ruleIndex}\u0000${filter}` → clients holding a slot. */
  private readonly slots = new Map<string, Set<string>>()
  /** clientKey → its slot keys, each with the filter it is for. */
  private readonly byClient = new Map<string, Map<string, string>>()

  /** Takes a slot for the client unless `max` other clients hold one; true when it holds one now. */
  tryAdd(ruleIndex: number, filter: string, clientKey: string, max: number): boolean {
    const key = slotKey(ruleIndex, filter)
    let clients = this.slots.get(key)
    if (clients?.has(clientKey)) return true
    if (clients && clients.size >= max) return false
    if (!clients) {
      clients = new Set()
      this.slots.set(key, clients)
    }
    clients.add(clientKey)
    let held = this.byClient.get(clientKey)
    if (!held) {
      held = new Map()
      this.byClient.set(clientKey, held)
    }
    held.set(key, filter)
    return true
  }

  /** Frees the client's slots for `filter` (UNSUBSCRIBE), or all of them (the client left). */
  remove(clientKey: string, filter?: string): void {
    const held = this.byClient.get(clientKey)
    if (!held) return
    for (const [key, heldFilter] of held) {
      if (filter !== undefined && heldFilter !== filter) continue
      held.delete(key)
      const clients = this.slots.get(key)
      clients?.delete(clientKey)
      if (clients?.size === 0) this.slots.delete(key)
    }
    if (held.size === 0) this.byClient.delete(clientKey)
  }

  count(ruleIndex: number, filter: string): number {
    return this.slots.get(slotKey(ruleIndex, filter))?.size ?? 0
  }
}

function slotKey(ruleIndex: number, filter: string): string {
  return `${ruleIndex}\u0000${filter}`
}
