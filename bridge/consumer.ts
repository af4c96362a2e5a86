import type { KeyObject } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import { type HpkeOpenRecipient, hpkeOpen, hpkeRecipientKid } from '../crypto/hpke.js'
import {
  BodyProtection,
  type EnvelopeFailure,
  EnvelopeKind,
  type TrustAnchors,
  type UplinkEnvelope,
  verifyEnvelope,
  verifyKeyBinding,
} from './envelope.js'

/** A message that verified: who sent it, where, and the body opened when it was sealed to us. */
export interface ConsumedMessage {
  kind: 'message' | 'control'
  cloudTopic: string
  gatewayId: string
  deviceId: string | null
  /** The topic the device published on. */
  topic: string
  seq: number
  timestamp: number
  protection: 'plain' | 'hpke' | 'device'
  /** Opened (plain, or HPKE-sealed to one of our keys); for 'device', the device's own sealed bytes. */
  body: Buffer
  /** True when this gateway sequence number was seen before: the bridge sent it again after a failure. */
  duplicate: boolean
  /** The kid (hex) of the gateway signing key that signed it. */
  kid: string
}

export type ConsumeFailure = EnvelopeFailure | 'no_recipient_key' | 'hpke_failed' | 'pending_overflow'

export type ConsumeResult =
  | { ok: true; message: ConsumedMessage }
  | { ok: false; failure: ConsumeFailure; cloudTopic: string; kid?: string }
  /** The key binding for this kid has not arrived yet: held until it does. */
  | { ok: 'pending'; cloudTopic: string; kid: string }

export interface BindingResult {
  ok: boolean
  gatewayId?: string
  kid?: string
  failure?: string
  /** Messages that were waiting for this binding, now verified (or refused). */
  released: ConsumeResult[]
}

interface Bound {
  key: KeyObject
  gatewayId: string
}

/** Messages held per consumer while their key binding is unknown, at most. */
export const MAX_PENDING = 10_000

/**
 * The cloud side of the envelope (docs/cloud-envelope.md): learns gateway
 * signing keys from key bindings whose certificate chains to the trusted CA,
 * verifies every envelope, opens HPKE-sealed bodies with the recipient keys it
 * holds, and flags duplicates by (gateway, sequence number). What a cloud
 * service copies: `edge-gateway cloud consume` is a thin shell around it.
 */
export class EnvelopeConsumer {
  private readonly keys = new Map<string, Bound>()
  private readonly recipients = new Map<string, HpkeOpenRecipient>()
  private readonly pending = new Map<string, Array<{ topic: string; bytes: Buffer }>>()
  private pendingCount = 0
  private readonly seen: LRUCache<string, true> | undefined

  /**
   * `dedupeMemory`: how many (gateway, gw-seq) pairs are remembered to flag duplicates; 0 for
   * none (a consumer group keeps them in Redis instead, and never sets `duplicate`).
   */
  constructor(
    private readonly ca: TrustAnchors,
    recipients: readonly HpkeOpenRecipient[],
    dedupeMemory = 1_000_000,
  ) {
    for (const r of recipients) this.recipients.set(r.kid.toString('hex'), r)
    this.seen = dedupeMemory > 0 ? new LRUCache({ max: dedupeMemory }) : undefined
  }

  /** A key binding received on `<prefix>/<gateway>/binding`. */
  async binding(bytes: Buffer): Promise<BindingResult> {
    const verified = verifyKeyBinding(bytes, this.ca)
    if ('failure' in verified) return { ok: false, failure: verified.failure, released: [] }
    const kid = verified.binding.kid.toString('hex')
    this.keys.set(kid, { key: verified.signingKey, gatewayId: verified.binding.gatewayId })
    const waiting = this.pending.get(kid) ?? []
    this.pending.delete(kid)
    this.pendingCount -= waiting.length
    const released: ConsumeResult[] = []
    for (const m of waiting) released.push(await this.message(m.topic, m.bytes))
    return { ok: true, gatewayId: verified.binding.gatewayId, kid, released }
  }

  /**
   * A data or control message received on `cloudTopic`. One whose key binding is unknown is held
   * until the binding comes (`hold`), or only reported as pending.
   */
  async message(cloudTopic: string, bytes: Buffer, hold = true): Promise<ConsumeResult> {
    // One decode: the verifier's key lookup tells us when the kid has no binding yet.
    let unknownKid: string | undefined
    const verified = verifyEnvelope(
      (k) => {
        const bound = this.keys.get(k.toString('hex'))
        if (!bound) unknownKid = k.toString('hex')
        return bound
      },
      cloudTopic,
      bytes,
    )
    if ('failure' in verified && unknownKid !== undefined) {
      if (!hold) return { ok: 'pending', cloudTopic, kid: unknownKid }
      if (this.pendingCount >= MAX_PENDING) {
        return { ok: false, failure: 'pending_overflow', cloudTopic, kid: unknownKid }
      }
      const list = this.pending.get(unknownKid) ?? []
      list.push({ topic: cloudTopic, bytes })
      this.pending.set(unknownKid, list)
      this.pendingCount++
      return { ok: 'pending', cloudTopic, kid: unknownKid }
    }
    if ('failure' in verified) {
      return {
        ok: false,
        failure: verified.failure,
        cloudTopic,
        ...(verified.kid && { kid: verified.kid.toString('hex') }),
      }
    }
    const { envelope, kid } = verified
    const body = await this.openBody(envelope)
    if (typeof body === 'string') return { ok: false, failure: body, cloudTopic }
    let duplicate = false
    if (envelope.kind === EnvelopeKind.message && this.seen) {
      const key = `${envelope.gatewayId}\u0000${envelope.seq}`
      duplicate = this.seen.has(key)
      this.seen.set(key, true)
    }
    return {
      ok: true,
      message: {
        kind: envelope.kind === EnvelopeKind.message ? 'message' : 'control',
        cloudTopic,
        gatewayId: envelope.gatewayId,
        deviceId: envelope.deviceId,
        topic: envelope.topic,
        seq: envelope.seq,
        timestamp: envelope.timestamp,
        protection:
          envelope.protection === BodyProtection.hpke
            ? 'hpke'
            : envelope.protection === BodyProtection.device
              ? 'device'
              : 'plain',
        body,
        duplicate,
        kid: kid.toString('hex'),
      },
    }
  }

  /** Whether a verified key binding for this kid (hex) is known. */
  knows(kid: string): boolean {
    return this.keys.has(kid)
  }

  /** Messages waiting for a key binding. */
  get waiting(): number {
    return this.pendingCount
  }

  private async openBody(envelope: UplinkEnvelope): Promise<Buffer | ConsumeFailure> {
    if (envelope.protection !== BodyProtection.hpke) return envelope.body
    const kid = hpkeRecipientKid(envelope.body, envelope.body.length)
    if (!Buffer.isBuffer(kid)) return 'hpke_failed'
    const recipient = this.recipients.get(kid.toString('hex'))
    if (!recipient) return 'no_recipient_key'
    const opened = await hpkeOpen(recipient, envelope.body, envelope.topic, envelope.body.length)
    return 'plaintext' in opened ? opened.plaintext : 'hpke_failed'
  }
}
