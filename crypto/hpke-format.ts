/**
 * The HPKE sealing format's constants (docs/wire-format.md, "HPKE sealing"), shared by
 * crypto/hpke.ts (hpke-js: seal and open) and crypto/hpke-seal-sync.ts (node:crypto: the
 * gateway's sealing), so that the gateway's sealing loads no hpke-js.
 */
import { encodeCbor } from './cbor.js'

export const HPKE_INFO = Buffer.from('edge-gateway hpke v1', 'utf8')
/** COSE header labels: kid (RFC 9052) and the HPKE encapsulated key (`ek`, COSE-HPKE). */
export const HpkeHeaderLabel = { kid: 4, enc: -4 } as const
export const HPKE_KEY_LENGTH = 32
export const HPKE_ENC_LENGTH = 32
/** Recipient key ids are 1 to 32 bytes (a name or a key fingerprint; not an OSCORE sender id). */
export const MAX_HPKE_KID_LENGTH = 32

export interface HpkeSealRecipient {
  kid: Buffer
  publicKey: Buffer
}

/** HPKE aad: CBOR [1, "hpke", topic], so a payload moved to another topic fails to open. */
export function hpkeAad(topic: string): Buffer {
  return encodeCbor([1, 'hpke', topic])
}
