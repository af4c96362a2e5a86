/** What one device holds in the queue: messages appended (or being written) and not yet acknowledged. */
export interface DeviceUsage {
  messages: number
  /** Bytes of their records (what they take in the log, segment headers and ack files not counted). */
  bytes: number
}

/** Devices are numbered in 16 bits in the queue's index; past this many at once, the rest share one number. */
export const MAX_DEVICES = 0xffff
const OVERFLOW = MAX_DEVICES
const OVERFLOW_NAME = '(other devices)'

/**
 * Per-device occupancy of the queue, so the quota can refuse the device that
 * holds too much (quota.ts). Devices are numbered while they hold something: the
 * index keeps each record's number (2 bytes), and a number is given back when
 * its device holds nothing any more. With more than 65,534 devices holding
 * messages at once, the others share the last number (and so one share).
 */
export class DeviceLedger {
  private readonly numbers = new Map<string, number>()
  private readonly names: string[] = []
  private readonly messages: number[] = []
  private readonly bytes: number[] = []
  private readonly free: number[] = []

  /** The number of `deviceId`, made when it holds nothing yet. */
  intern(deviceId: string): number {
    const known = this.numbers.get(deviceId)
    if (known !== undefined) return known
    let n = this.free.pop()
    if (n === undefined) {
      if (this.names.length >= OVERFLOW) return this.overflow()
      n = this.names.length
      this.names.push(deviceId)
      this.messages.push(0)
      this.bytes.push(0)
    } else this.names[n] = deviceId
    this.numbers.set(deviceId, n)
    return n
  }

  /** Counts one more record of `bytes` for device number `n`. */
  add(n: number, bytes: number): void {
    this.messages[n]!++
    this.bytes[n]! += bytes
  }

  /** Counts one record of `bytes` less for device number `n`; the number is given back at zero. */
  remove(n: number, bytes: number): void {
    const left = --this.messages[n]!
    this.bytes[n]! -= bytes
    if (left > 0 || n === OVERFLOW) return
    this.bytes[n] = 0
    this.numbers.delete(this.names[n]!)
    this.free.push(n)
  }

  /** What `deviceId` holds (all zero when nothing). */
  usage(deviceId: string): DeviceUsage {
    let n = this.numbers.get(deviceId)
    // A device not numbered yet would get a free number, or share the last one when none is left.
    if (n === undefined && this.free.length === 0 && this.names.length > OVERFLOW) n = OVERFLOW
    if (n === undefined) return { messages: 0, bytes: 0 }
    return { messages: this.messages[n] ?? 0, bytes: this.bytes[n] ?? 0 }
  }

  /** The `count` devices holding the most messages, most first. */
  top(count: number): Array<{ device: string } & DeviceUsage> {
    const held: Array<{ device: string } & DeviceUsage> = []
    for (let n = 0; n < this.names.length; n++) {
      const messages = this.messages[n] ?? 0
      if (messages > 0) held.push({ device: this.names[n]!, messages, bytes: this.bytes[n]! })
    }
    held.sort((a, b) => b.messages - a.messages || b.bytes - a.bytes)
    return held.slice(0, count)
  }

  /** Devices holding something now (those sharing the last number count as one). */
  get devices(): number {
    return this.numbers.size + ((this.messages[OVERFLOW] ?? 0) > 0 ? 1 : 0)
  }

  private overflow(): number {
    while (this.names.length <= OVERFLOW) {
      this.names.push(OVERFLOW_NAME)
      this.messages.push(0)
      this.bytes.push(0)
    }
    return OVERFLOW
  }
}
