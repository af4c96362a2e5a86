/** Types for envelope.mjs, so TypeScript tests can use the same fast reader. */
export const ENVELOPE_FIRST_BYTE: number

export interface ReadEnvelope {
  kid: Buffer | null
  kind: number
  deviceId: Buffer | null
  topic: Buffer
  seq: number
  timestamp: number
  protection: number
  body: Buffer
}

export function readEnvelope(payload: Buffer): ReadEnvelope | null
