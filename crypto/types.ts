/**
 * The contract of `crypto/`: payload protection for devices that cannot run TLS.
 * Wire formats are specified in docs/wire-format.md; every object here is
 * untagged CBOR (no COSE tag) to save bytes on constrained links.
 */

/** COSE algorithm identifiers (RFC 9053) used by the project. */
export const Alg = {
  AES_CCM_16_64_128: 10,
  A128GCM: 1,
  A256GCM: 3,
  CHACHA20_POLY1305: 24,
  HMAC_256_64: 4,
  HMAC_256_256: 5,
  EDDSA: -8,
  ES256: -7,
} as const

export type AeadAlg =
  | typeof Alg.AES_CCM_16_64_128
  | typeof Alg.A128GCM
  | typeof Alg.A256GCM
  | typeof Alg.CHACHA20_POLY1305
export type MacAlg = typeof Alg.HMAC_256_64 | typeof Alg.HMAC_256_256
export type SignAlg = typeof Alg.EDDSA | typeof Alg.ES256

/** Which way a message travels; each direction has its own sender key (OSCORE sender/recipient). */
export type Direction = 'device-to-gateway' | 'gateway-to-device'

/**
 * What a device and the gateway share: the master secret (16 or 32 bytes, from
 * a 0600 file), an optional master salt, and the device's key id (`kid`, 1 to
 * 6 bytes; the OSCORE Sender ID of the device). The gateway's Sender ID is the
 * empty byte string.
 */
export interface MasterSecretConfig {
  kid: Buffer
  masterSecret: Buffer
  masterSalt?: Buffer
  aead: AeadAlg
  mac?: MacAlg
}

/** Keys derived from a master secret (RFC 8613 §3.2 with HKDF-SHA256). */
export interface DerivedContext {
  kid: Buffer
  aead: AeadAlg
  mac: MacAlg
  commonIv: Buffer
  /** AEAD key per direction. */
  aeadKey: Record<Direction, Buffer>
  /** MAC key per direction (same derivation, `alg` = the MAC algorithm). */
  macKey: Record<Direction, Buffer>
  /** Key for one-time CONNECT tokens. */
  tokenKey: Buffer
}

/** Header fields of a received protected payload, read before any key is used. */
export interface ProtectedHeader {
  kid: Buffer
  /** The sender sequence number (OSCORE Partial IV), 0 to 2^40 - 1. */
  seq: number
}

/** Why a protected payload was refused; stable strings, used in security events and metrics. */
export type OpenFailure =
  | 'malformed' // not the expected CBOR structure, or trailing bytes
  | 'oversize' // larger than the configured limit
  | 'unknown_kid' // no device with this key id
  | 'wrong_device' // the key id belongs to another device than the authenticated one
  | 'retired_kid' // the device's own key that was replaced, after the end of its overlap
  | 'bad_tag' // authentication tag or MAC does not verify (tampered, wrong key, moved topic)
  | 'replayed' // sequence number already seen
  | 'too_old' // sequence number below the replay window
  | 'bad_signature'
