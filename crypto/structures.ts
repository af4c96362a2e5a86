import { encodeCbor } from './cbor.js'

/** First element of every external AAD; a new wire format gets a new number. */
export const FORMAT_VERSION = 1
/** Our symmetric objects carry no protected header: the algorithm belongs to the device's context. */
export const EMPTY_PROTECTED = Buffer.alloc(0)

/**
 * External AAD of Encrypt0 and Mac0: CBOR [1, alg, kid, partial IV, topic].
 * It binds the algorithm, the device, the sequence number and the MQTT topic.
 */
export function externalAad(alg: number, kid: Buffer, partialIv: Buffer, topic: string): Buffer {
  return encodeCbor([FORMAT_VERSION, alg, kid, partialIv, topic])
}

/** Enc_structure of RFC 9052 §5.3: ["Encrypt0", protected, external_aad]. */
export function encStructure(protectedHeader: Buffer, aad: Buffer): Buffer {
  return encodeCbor(['Encrypt0', protectedHeader, aad])
}

/** MAC_structure of RFC 9052 §6.3: ["MAC0", protected, external_aad, payload]. */
export function macStructure(protectedHeader: Buffer, aad: Buffer, payload: Buffer): Buffer {
  return encodeCbor(['MAC0', protectedHeader, aad, payload])
}

/** Sig_structure of RFC 9052 §4.4 for COSE_Sign1: ["Signature1", body_protected, external_aad, payload]. */
export function sigStructure(protectedHeader: Buffer, aad: Buffer, payload: Buffer): Buffer {
  return encodeCbor(['Signature1', protectedHeader, aad, payload])
}
