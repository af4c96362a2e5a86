import { readFile } from 'node:fs/promises'
import mqtt, { type MqttClient } from 'mqtt'
import { readEnvelopeUnverified } from './envelope.js'

export interface CloudConsumerOptions {
  host: string
  port: number
  caFile: string
  certFile: string
  keyFile: string
  /** Topic filter, subscribed at QoS 1. */
  topic: string
  /** A persistent session (clean start off, long expiry) keyed by this id, so a cloud broker restart with persistence loses nothing. */
  clientId: string
}

/** One message as the cloud consumer got it. */
export interface CloudRecord {
  topic: string
  payload: string
  /** The `gw-seq` user property, or undefined when it is missing. */
  seq: string | undefined
  /** The consumer's `epoch` when it arrived (a test sets it, for example to the gateway run). */
  epoch: number
}

/** The figures a fault test reports and asserts on. */
export interface Tally {
  sent: number
  acknowledged: number
  /** Messages received, duplicates included. */
  received: number
  /** Distinct payloads received. */
  distinct: number
  /** Received minus distinct `gw-seq` values: the copies a consumer drops by sequence number. */
  duplicates: number
  /** Acknowledged payloads that never arrived. */
  lost: string[]
  /** `gw-seq` values carried by two different payloads (a number given out twice). */
  seqConflicts: string[]
  /** Payloads that arrived under two different `gw-seq` values (a copy the sequence number cannot flag). */
  unflaggedCopies: string[]
  /** Messages without a `gw-seq` user property. */
  withoutSeq: number
  /** Payloads received that no device sent. */
  unknown: number
}

/**
 * The cloud-side consumer of the fault tests: a real mqtt.js MQTT 5 client over
 * mutual TLS with a persistent session, recording each message with its
 * `gw-seq` user property so duplicates can be told apart by sequence number.
 * It reconnects by itself (every 200 ms) when the cloud broker goes away.
 */
export class CloudConsumer {
  readonly records: CloudRecord[] = []
  /** Stamped on each record as it arrives. */
  epoch = 0

  private constructor(private readonly client: MqttClient) {
    client.on('message', (topic, payload, packet) => {
      const seq = packet.properties?.userProperties?.['gw-seq']
      this.records.push({
        topic,
        // The body of the gateway's signed envelope (unverified here; see cloud-envelope.test.ts).
        payload: (readEnvelopeUnverified(payload)?.body ?? payload).toString('utf8'),
        seq: Array.isArray(seq) ? seq[0] : seq,
        epoch: this.epoch,
      })
    })
  }

  static async start(opts: CloudConsumerOptions): Promise<CloudConsumer> {
    const [ca, cert, key] = await Promise.all([
      readFile(opts.caFile),
      readFile(opts.certFile),
      readFile(opts.keyFile),
    ])
    const client = await mqtt.connectAsync({
      protocol: 'mqtts',
      host: opts.host,
      port: opts.port,
      servername: 'localhost',
      ca,
      cert,
      key,
      protocolVersion: 5,
      clientId: opts.clientId,
      clean: false,
      properties: { sessionExpiryInterval: 3600 },
      reconnectPeriod: 200,
      connectTimeout: 5_000,
    })
    const consumer = new CloudConsumer(client)
    await client.subscribeAsync(opts.topic, { qos: 1 })
    return consumer
  }

  /** Payloads received so far (distinct). */
  payloads(): Set<string> {
    return new Set(this.records.map((r) => r.payload))
  }

  /**
   * Waits (bounded, polling) until every payload of `expected` has arrived;
   * resolves with how many are still missing (0 when all came).
   */
  async waitForAll(expected: ReadonlySet<string>, timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs
    let seen = 0
    const got = new Set<string>()
    for (;;) {
      for (; seen < this.records.length; seen++) got.add(this.records[seen]!.payload)
      let missing = 0
      for (const p of expected) if (!got.has(p)) missing++
      if (missing === 0 || Date.now() > deadline) return missing
      await new Promise((r) => setTimeout(r, 200))
    }
  }

  /** Waits until no message has arrived for `quietMs` (at most `timeoutMs`). */
  async waitQuiet(quietMs: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    let count = this.records.length
    let since = Date.now()
    while (Date.now() < deadline && Date.now() - since < quietMs) {
      await new Promise((r) => setTimeout(r, 25))
      if (this.records.length !== count) {
        count = this.records.length
        since = Date.now()
      }
    }
  }

  /** Counts what arrived against what was sent and acknowledged. */
  tally(sent: number, acknowledged: ReadonlySet<string>, isSent: (payload: string) => boolean): Tally {
    const bySeq = new Map<string, string>()
    const seqsOf = new Map<string, Set<string>>()
    const seqConflicts = new Set<string>()
    let withoutSeq = 0
    let unknown = 0
    for (const { payload, seq } of this.records) {
      if (!isSent(payload)) unknown++
      if (seq === undefined) {
        withoutSeq++
        continue
      }
      const before = bySeq.get(seq)
      if (before === undefined) bySeq.set(seq, payload)
      else if (before !== payload) seqConflicts.add(seq)
      const seqs = seqsOf.get(payload) ?? new Set<string>()
      seqs.add(seq)
      seqsOf.set(payload, seqs)
    }
    const received = this.payloads()
    return {
      sent,
      acknowledged: acknowledged.size,
      received: this.records.length,
      distinct: received.size,
      duplicates: this.records.length - withoutSeq - bySeq.size,
      lost: [...acknowledged].filter((p) => !received.has(p)),
      seqConflicts: [...seqConflicts],
      unflaggedCopies: [...seqsOf].filter(([, seqs]) => seqs.size > 1).map(([p]) => p),
      withoutSeq,
      unknown,
    }
  }

  /** `gw-seq` values received more than once within one epoch (copies not explained by a change of epoch). */
  duplicatesWithinEpoch(): string[] {
    const seen = new Set<string>()
    const twice = new Set<string>()
    for (const { seq, epoch } of this.records) {
      if (seq === undefined) continue
      const key = `${epoch}/${seq}`
      if (seen.has(key)) twice.add(seq)
      seen.add(key)
    }
    return [...twice]
  }

  async stop(): Promise<void> {
    await this.client.endAsync(true).catch(() => undefined)
  }
}

/** The one summary line each fault test prints, so its figures can be quoted. */
export function summaryLine(label: string, t: Tally, extra: Record<string, string | number> = {}): string {
  const more = Object.entries(extra)
    .map(([k, v]) => `, ${k} ${v}`)
    .join('')
  return (
    `\n${label}: sent ${t.sent}, acknowledged ${t.acknowledged}, received ${t.received}, ` +
    `distinct ${t.distinct}, duplicates ${t.duplicates} (flagged by gw-seq), acknowledged lost ${t.lost.length}${more}`
  )
}
