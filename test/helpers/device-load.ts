import mqtt, { type MqttClient } from 'mqtt'

export interface DeviceLoadOptions {
  port: number
  username: string
  password: string
  /** Client ids are `${clientIdPrefix}-${i}`. */
  clientIdPrefix: string
  /** Device connections publishing side by side. */
  connections: number
  /** Topic of connection i: `${topicPrefix}/${i}`. */
  topicPrefix: string
  /** Payloads are `${payloadPrefix}-c${i}-${n}`, unique per run. */
  payloadPrefix: string
  /** QoS 1 messages awaiting PUBACK per connection, at most. */
  window: number
  /** Messages per second offered over all connections; Infinity for a flood (as fast as PUBACKs come). */
  rate: number
  /** Stop offering after this long (ms); a bound on every run. */
  durationMs: number
  /** Stop offering after this many messages in all (default: no count bound but the duration). */
  maxMessages?: number
}

export interface DeviceLoadResult {
  /** PUBLISH packets handed to the connections. */
  sent: number
  /** Payloads whose PUBACK came. */
  acknowledged: Set<string>
  /** From the first PUBLISH to the end of offering (ms). */
  elapsedMs: number
  /** Connections that closed under the load (a gateway killed or refusing). */
  closed: number
}

const TICK_MS = 5

/**
 * Devices as real mqtt.js clients publishing QoS 1 over several connections,
 * each with a window of messages awaiting PUBACK, paced to a total rate (or a
 * flood). `run` ends when the duration is over, the count is reached, or every
 * connection has closed; then it waits (bounded) for the PUBACKs still due.
 */
export class DeviceLoad {
  private readonly clients: MqttClient[] = []
  private readonly inFlight: number[] = []
  private readonly next: number[] = []
  private readonly open: boolean[] = []
  private readonly acknowledged = new Set<string>()
  private sent = 0
  private stopped = false

  private constructor(private readonly options: DeviceLoadOptions) {}

  /** Connects every device (no automatic reconnect: a closed connection stays closed). */
  static async connect(options: DeviceLoadOptions): Promise<DeviceLoad> {
    const load = new DeviceLoad(options)
    for (let i = 0; i < options.connections; i++) {
      const client = await mqtt.connectAsync({
        host: '127.0.0.1',
        port: options.port,
        username: options.username,
        password: options.password,
        clientId: `${options.clientIdPrefix}-${i}`,
        reconnectPeriod: 0,
        connectTimeout: 5_000,
      })
      const stream = client.stream as { setNoDelay?: (on: boolean) => void }
      stream.setNoDelay?.(true)
      load.clients.push(client)
      load.inFlight.push(0)
      load.next.push(0)
      load.open.push(true)
      client.once('close', () => {
        load.open[i] = false
      })
    }
    return load
  }

  /** Stops offering new messages (the run then ends after the PUBACKs still due). */
  stop(): void {
    this.stopped = true
  }

  /** Calls `onTick` every few ms while offering (for kills and pauses at chosen moments). */
  async run(onTick?: (acked: number, elapsedMs: number) => void): Promise<DeviceLoadResult> {
    const { options } = this
    const perConnection = options.rate / options.connections
    const max = options.maxMessages ?? Number.POSITIVE_INFINITY
    const started = Date.now()
    let offeringEnded = started
    await new Promise<void>((resolve) => {
      const tick = () => {
        const elapsed = Date.now() - started
        onTick?.(this.acknowledged.size, elapsed)
        const over = this.stopped || elapsed >= options.durationMs || this.sent >= max
        if (over || this.open.every((o) => !o)) {
          this.stopped = true
          offeringEnded = Date.now()
          clearInterval(timer)
          resolve()
          return
        }
        for (let i = 0; i < this.clients.length; i++) {
          const due = Math.min(
            Number.MAX_SAFE_INTEGER,
            Math.floor(((elapsed + TICK_MS) * perConnection) / 1000),
          )
          this.pump(i, due, max)
        }
      }
      const timer = setInterval(tick, TICK_MS)
      tick()
    })
    await this.settle(10_000)
    return {
      sent: this.sent,
      acknowledged: this.acknowledged,
      elapsedMs: offeringEnded - started,
      closed: this.open.filter((o) => !o).length,
    }
  }

  private pump(i: number, due: number, max: number): void {
    const client = this.clients[i]!
    while (
      this.open[i] &&
      !this.stopped &&
      this.inFlight[i]! < this.options.window &&
      this.next[i]! < due &&
      this.sent < max
    ) {
      const payload = `${this.options.payloadPrefix}-c${i}-${this.next[i]!++}`
      this.inFlight[i]!++
      this.sent++
      client.publish(`${this.options.topicPrefix}/${i}`, payload, { qos: 1 }, (err) => {
        this.inFlight[i]!--
        if (!err) this.acknowledged.add(payload)
        // A flood refills the window as soon as a PUBACK frees a slot.
        if (this.options.rate === Number.POSITIVE_INFINITY) this.pump(i, Number.MAX_SAFE_INTEGER, max)
      })
    }
  }

  /** Waits until no PUBACK is due on an open connection, at most `timeoutMs`. */
  private async settle(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline && this.inFlight.some((n, i) => n > 0 && this.open[i])) {
      await new Promise((r) => setTimeout(r, 20))
    }
  }

  /** Closes every connection (forcibly: in-flight PUBLISHes are abandoned, never counted as acknowledged). */
  async close(): Promise<void> {
    this.stopped = true
    await Promise.all(this.clients.map((c) => c.endAsync(true).catch(() => undefined)))
  }
}

/** True for a payload this load could have sent (for counting strangers at the cloud). */
export function sentBy(payloadPrefix: string): (payload: string) => boolean {
  return (payload) => payload.startsWith(`${payloadPrefix}-`)
}
