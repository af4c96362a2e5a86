import { readEnvelope } from '../../bench/lib/envelope.mjs'

export interface UnverifiedEnvelope {
  kind: number
  deviceId: string | null
  topic: string
  seq: number
  timestamp: number
  protection: number
  body: Buffer
}

/**
 * Reads the gateway's cloud envelope (a COSE_Sign1 around the device payload)
 * WITHOUT checking the signature, so tests about delivery can compare bodies
 * and sequence numbers at any rate (the bench's hand-walked reader, a few
 * microseconds per message); signatures are checked by
 * test/integration/cloud-envelope.test.ts and `edge-gateway cloud consume`.
 * Undefined when the bytes are not an envelope.
 */
export function readEnvelopeUnverified(bytes: Buffer): UnverifiedEnvelope | undefined {
  const e = readEnvelope(bytes)
  if (!e) return undefined
  return {
    kind: e.kind,
    deviceId: e.deviceId ? e.deviceId.toString('utf8') : null,
    topic: e.topic.toString('utf8'),
    seq: e.seq,
    timestamp: e.timestamp,
    protection: e.protection,
    body: e.body,
  }
}
