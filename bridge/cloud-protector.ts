import type { KeyObject } from 'node:crypto'
import type { TopicMapping } from '../config/index.js'
import type { HpkeSealRecipient } from '../crypto/hpke-format.js'
import { HpkeSealer } from '../crypto/hpke-seal-sync.js'
import { BodyProtection, EnvelopeKind, signEnvelope, signingKid } from './envelope.js'
import { BridgeError } from './errors.js'
import type { QueueEntry } from './queue/queue.js'

/**
 * Seals and signs what the gateway sends to the cloud (docs/cloud-envelope.md).
 * Synchronous: one HPKE seal (node:crypto) when the mapping asks for it and
 * one Ed25519 signature per message.
 */
export class CloudProtector {
  readonly kid: Buffer
  private readonly sealers = new Map<string, HpkeSealer>()

  constructor(
    private readonly gatewayId: string,
    readonly signingKey: KeyObject,
    recipients: ReadonlyMap<string, HpkeSealRecipient>,
  ) {
    this.kid = signingKid(signingKey)
    for (const [name, recipient] of recipients) {
      try {
        this.sealers.set(name, new HpkeSealer(recipient))
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err)
        throw new BridgeError('BRIDGE_ERR_KEY_FILE', `cloud.recipients "${name}": ${reason}`, { cause: err })
      }
    }
  }

  /** The body protection `mapping` gives a message: what protect() does under it. */
  protectionFor(mapping: TopicMapping): BodyProtection {
    if (mapping.mode === 'end-to-end') return BodyProtection.device
    const sealer = mapping.sealFor === undefined ? undefined : this.sealers.get(mapping.sealFor)
    return sealer ? BodyProtection.hpke : BodyProtection.plain
  }

  /** The envelope for a queued device message published on `cloudTopic` under `mapping`. */
  protect(entry: QueueEntry, cloudTopic: string, mapping: TopicMapping | undefined): Buffer {
    const { message } = entry
    const sign = (protection: BodyProtection, body: Buffer) =>
      signEnvelope(this.signingKey, this.kid, cloudTopic, {
        kind: EnvelopeKind.message,
        gatewayId: this.gatewayId,
        deviceId: message.deviceId,
        topic: message.topic,
        seq: entry.seq,
        timestamp: message.receivedAt,
        protection,
        body,
      })
    if (mapping?.mode === 'end-to-end') return sign(BodyProtection.device, message.payload)
    const sealer = mapping?.sealFor === undefined ? undefined : this.sealers.get(mapping.sealFor)
    if (!sealer) return sign(BodyProtection.plain, message.payload)
    return sign(BodyProtection.hpke, sealer.seal(message.payload, message.topic))
  }

  /** A signed control message (status, health) for `cloudTopic`; `name` is the topic's last level. */
  control(cloudTopic: string, name: string, body: unknown, timestamp = Date.now()): Buffer {
    return signEnvelope(this.signingKey, this.kid, cloudTopic, {
      kind: EnvelopeKind.control,
      gatewayId: this.gatewayId,
      deviceId: null,
      topic: name,
      seq: 0,
      timestamp,
      protection: BodyProtection.plain,
      body: Buffer.from(JSON.stringify(body)),
    })
  }
}
