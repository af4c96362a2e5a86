/**
 * Finds a queued message the cloud broker will not take without closing the connection (a
 * PUBLISH over its `message_size_limit` or `max_packet_size` where it does not say so in its
 * CONNACK, a topic deeper than it allows, a PUBACK the MQTT client cannot parse). Such a message
 * is the oldest in flight each time a session dies, and since the queue sends the oldest first
 * again, it would wedge the uplink for every device and resend the in-flight window each time.
 *
 * After `LOSSES_BEFORE_PROBE` sessions in a row lost with the same message the oldest in flight,
 * the next session sends it alone first; if that session dies too, before its PUBACK, the
 * message is condemned: the uplink sets it aside as an `unsendable` dead letter (kept, counted,
 * logged; `edge-gateway deadletter retry` sends it again) and goes on with the rest. A PUBACK for
 * it at any point clears it.
 */
export const LOSSES_BEFORE_PROBE = 3
/**
 * A session's death counts against the oldest message in flight only if it came this soon after
 * that message was sent: a broker that refuses a PUBLISH by closing the connection does so at
 * once; a crash loop, a keepalive timeout or a network that drops do not wait for one message.
 */
export const POISON_WINDOW_MS = 2000

/** A message sent on a session and not acknowledged when it died. */
export interface Unacknowledged {
  seq: number
  /** When it was sent (ms on the monotonic clock, as `now` of sessionLost). */
  sentAt: number
}

export class PoisonWatch {
  /** The gw-seq that was the oldest in flight when the last session died, and how many times in a row. */
  private head: number | undefined
  private losses = 0
  /** The gw-seq the current session sends alone first. */
  private probing: number | undefined
  private readonly condemned = new Map<number, string>()

  /** The gw-seq a new session must send alone, before anything else, if any. */
  alone(): number | undefined {
    return this.probing
  }

  /**
   * A session died at `now` with these messages sent and not acknowledged (in any order). Not
   * counted: a death with nothing in flight, one the gateway caused for what the broker sent
   * (`inbound`), or one that came more than POISON_WINDOW_MS after the oldest was sent.
   */
  sessionLost(unacknowledged: ReadonlyArray<Unacknowledged>, now: number, inbound = false): void {
    if (unacknowledged.length === 0 || inbound) return
    let first = unacknowledged[0]!
    for (const u of unacknowledged) if (u.seq < first.seq) first = u
    if (now - first.sentAt > POISON_WINDOW_MS) return
    const oldest = first.seq
    if (this.probing !== undefined) {
      const probed = this.probing
      this.probing = undefined
      if (unacknowledged.length === 1 && oldest === probed) {
        this.condemned.set(
          probed,
          `the cloud broker closed the connection each of the ${this.losses + 1} times this message was in flight, the last time alone (its reason is in the cloud link's log lines)`,
        )
        this.head = undefined
        this.losses = 0
        return
      }
    }
    if (oldest === this.head) this.losses++
    else {
      this.head = oldest
      this.losses = 1
    }
    if (this.losses >= LOSSES_BEFORE_PROBE) this.probing = oldest
  }

  /** The cloud settled this gw-seq (a PUBACK, whatever its reason code): it is not poison. */
  settled(seq: number): void {
    if (seq === this.head) {
      this.head = undefined
      this.losses = 0
    }
    if (seq === this.probing) this.probing = undefined
  }

  /** Why this gw-seq must be set aside instead of sent, once: undefined when it may be sent. */
  takeCondemned(seq: number): string | undefined {
    const why = this.condemned.get(seq)
    if (why !== undefined) this.condemned.delete(seq)
    return why
  }
}
