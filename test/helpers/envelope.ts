import { decodeCbor } from '../../crypto/cbor.js'

export interface UnverifiedEnvelope {
  kind: number
  gatewayId: string
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
 * and sequence numbers; signatures are checked by test/integration/cloud-envelope.test.ts
 * and `edge-gateway cloud consume`. Undefined when the bytes are not an envelope.
 */
export function readEnvelopeUnverified(bytes: Buffer): UnverifiedEnvelope | undefined {
  try {
    const sign1 = decodeCbor(bytes, { maxBytes: 16 * 1024 * 1024, maxDepth: 2 })
    if (!Array.isArray(sign1) || sign1.length !== 4 || !Buffer.isBuffer(sign1[2])) return undefined
    const inner = decodeCbor(sign1[2], { maxBytes: sign1[2].length, maxDepth: 1 })
    if (!Array.isArray(inner) || inner.length !== 8) return undefined
    const [kind, gatewayId, deviceId, topic, seq, timestamp, protection, body] = inner
    if (typeof kind !== 'number' || typeof gatewayId !== 'string' || typeof topic !== 'string')
      return undefined
    if (typeof seq !== 'number' || typeof timestamp !== 'number' || typeof protection !== 'number') {
      return undefined
    }
    if (!Buffer.isBuffer(body) || (deviceId !== null && typeof deviceId !== 'string')) return undefined
    return { kind, gatewayId, deviceId, topic, seq, timestamp, protection, body }
  } catch {
    return undefined
  }
}
