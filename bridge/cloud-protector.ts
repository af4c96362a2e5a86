import type { KeyObject } from 'node:crypto'
import type { TopicMapping } from '../config/index.js'
import { type HpkeSealRecipient, hpkeSeal } from '../crypto/hpke.js'
import { BodyProtection, EnvelopeKind, signEnvelope, signingKid } from './envelope.js'
import type { QueueEntry } from './queue/queue.js'

/**
 * Seals and signs what the gateway sends to the cloud (docs/cloud-envelope.md).
 * Signing is synchronous (one Ed25519 signature per message); HPKE sealing
 * returns a promise.
 */
export class CloudProtector {
  readonly kid: Buffer

  constructor(
    private readonly gatewayId: string,
    readonly signingKey: KeyObject,
    private readonly recipients: ReadonlyMap<string, HpkeSealRecipient>,
  ) {
    this.kid = signingKid(signingKey)
  }

  /** The envelope for a queued device message published on `cloudTopic` under `mapping`. */
  protect(
    entry: QueueEntry,
    cloudTopic: string,
    mapping: TopicMapping | undefined,
  ): Buffer | Promise<Buffer> {
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
    const recipient = mapping?.sealFor === undefined ? undefined : this.recipients.get(mapping.sealFor)
    if (!recipient) return sign(BodyProtection.plain, message.payload)
    return hpkeSeal(recipient, message.payload, message.topic).then((sealed) =>
      sign(BodyProtection.hpke, sealed),
    )
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
