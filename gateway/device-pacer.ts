import type { DeviceRate } from './access-control.js'

/**
 * lan.deviceRate as back-pressure: each device's PUBLISH packets are spaced to
 * its rate (a virtual-clock token bucket, GCRA: `burst` at once, then one every
 * 1/rate s) by holding the packet's authorization until its turn. aedes reads
 * the next bytes of a connection only when every packet of the last read is
 * handled, so a device over its rate is slowed by TCP itself: nothing is
 * dropped, nothing more is read or buffered, and a flood costs the gateway the
 * rate, not the flood (EMQX's connection rate limit works the same way).
 *
 * State is one number per device that has sent (devices come from the config,
 * so this is bounded by it) plus a timer per held packet; held packets are bounded
 * by what one read of a connection can hold (lan.maxPacketBytes and the socket
 * buffer).
 */
export class DevicePacer {
  /** Per device: the theoretical arrival time of its next packet (ms, monotonic). */
  private readonly next = new Map<string, number>()
  private readonly held = new Set<Held>()
  /** Per device: its last held packet's turn, while one is held (see `behind`). */
  private readonly tails = new Map<string, Promise<void>>()
  private readonly intervalMs: number
  private readonly toleranceMs: number

  constructor(
    readonly rate: DeviceRate,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.intervalMs = 1000 / rate.messagesPerSecond
    this.toleranceMs = Math.max(0, rate.burst - 1) * this.intervalMs
  }

  /**
   * Takes the device's next turn: 0 when the packet may go now, else how many
   * ms it must wait (its turn is reserved, so packets keep their order).
   */
  reserve(deviceId: string): number {
    const now = this.now()
    const due = Math.max(this.next.get(deviceId) ?? now, now)
    this.next.set(deviceId, due + this.intervalMs)
    return Math.max(0, due - this.toleranceMs - now)
  }

  /**
   * Resolves after `ms`, or at once when the pacer is released (reload, stop). With a device,
   * also not before that device's earlier held packets: their order is kept.
   */
  wait(ms: number, deviceId?: string): Promise<void> {
    const timer = new Promise<void>((resolve) => {
      const held: Held = {
        timer: setTimeout(() => {
          this.held.delete(held)
          resolve()
        }, ms),
        resolve,
      }
      this.held.add(held)
    })
    if (deviceId === undefined) return timer
    const tail = this.tails.get(deviceId)
    return this.chain(deviceId, tail === undefined ? timer : Promise.all([tail, timer]).then(() => undefined))
  }

  /**
   * For a packet whose turn is now (`reserve` gave 0): undefined when nothing of the device is
   * held, else a promise that resolves after its last held packet went. A busy process can run
   * the next packet's `reserve` more than one interval after the last one's, when the device's
   * turn has come again while the held packet's timer has not run yet; without this, the later
   * packet would overtake it (a SUBSCRIBE's second filter taking the last subscription slot
   * before the first, a QoS 1 message delivered before the one sent ahead of it).
   */
  behind(deviceId: string): Promise<void> | undefined {
    const tail = this.tails.get(deviceId)
    return tail === undefined ? undefined : this.chain(deviceId, tail)
  }

  private chain(deviceId: string, turn: Promise<void>): Promise<void> {
    const done: Promise<void> = turn.then(() => {
      if (this.tails.get(deviceId) === done) this.tails.delete(deviceId)
    })
    this.tails.set(deviceId, done)
    return done
  }

  /** Packets waiting for their turn now. */
  get waiting(): number {
    return this.held.size
  }

  /** Lets every waiting packet go (a reload brought a new rate, or the gateway stops). */
  release(): void {
    for (const held of this.held) {
      clearTimeout(held.timer)
      held.resolve()
    }
    this.held.clear()
  }

  /** Devices with a turn on record. */
  devices(): IterableIterator<string> {
    return this.next.keys()
  }

  /** Forgets a device removed from the config. */
  forget(deviceId: string): void {
    this.next.delete(deviceId)
    this.tails.delete(deviceId)
  }
}

interface Held {
  readonly timer: NodeJS.Timeout
  readonly resolve: () => void
}
