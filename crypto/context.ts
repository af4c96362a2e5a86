import { hkdfSync } from 'node:crypto'
import { aeadParams, isAeadAlg, isMacAlg, MAC_KEY_LENGTH } from './algorithms.js'
import { encodeCbor } from './cbor.js'
import { CryptoError } from './errors.js'
import { encodePartialIv } from './partial-iv.js'
import { Alg, type DerivedContext, type Direction, type MacAlg, type MasterSecretConfig } from './types.js'

/** Key ids are 1 to 6 bytes, so they fit the nonce of every AEAD we support (nonce length - 6). */
export const MAX_KID_LENGTH = 6
export const MAX_SALT_LENGTH = 64
const GATEWAY_SENDER_ID = Buffer.alloc(0)
/** The token key is bound to the algorithm tokens use, whatever the context's MAC algorithm. */
const TOKEN_KEY_ALG = Alg.HMAC_256_64

export const DIRECTIONS: readonly Direction[] = Object.freeze(['device-to-gateway', 'gateway-to-device'])

/**
 * The HKDF `info` of RFC 8613 §3.2.1: CBOR [id, id_context, alg, type, L]
 * with id_context always null. `type` "Token" is our extension.
 */
export function kdfInfo(id: Buffer, alg: number, type: 'Key' | 'IV' | 'Token', length: number): Buffer {
  return encodeCbor([id, null, alg, type, length])
}

/** The OSCORE Sender ID of the endpoint that sends in this direction: the device's kid, or h'' for the gateway. */
export function senderId(ctx: Pick<DerivedContext, 'kid'>, direction: Direction): Buffer {
  return direction === 'device-to-gateway' ? ctx.kid : GATEWAY_SENDER_ID
}

/**
 * Derive every key of a device from its master secret, as RFC 8613 §3.2 does
 * with HKDF-SHA256: salt = master salt (empty if none), IKM = master secret.
 */
export function deriveContext(config: MasterSecretConfig): DerivedContext {
  const { kid, masterSecret } = config
  const salt = config.masterSalt ?? Buffer.alloc(0)
  const mac: MacAlg = config.mac ?? Alg.HMAC_256_64
  if (!isAeadAlg(config.aead)) {
    throw new CryptoError('CRYPTO_ERR_BAD_ALG', `Expected aead 10, 1, 3 or 24, got ${String(config.aead)}`)
  }
  if (!isMacAlg(mac)) throw new CryptoError('CRYPTO_ERR_BAD_ALG', `Expected mac 4 or 5, got ${String(mac)}`)
  checkLength('kid', kid, 1, MAX_KID_LENGTH)
  if (!Buffer.isBuffer(masterSecret) || (masterSecret.length !== 16 && masterSecret.length !== 32)) {
    throw new CryptoError(
      'CRYPTO_ERR_BAD_KEY',
      `Expected a master secret of 16 or 32 bytes, got ${sizeOf(masterSecret)}`,
    )
  }
  checkLength('master salt', salt, 0, MAX_SALT_LENGTH)

  const aead = aeadParams(config.aead)
  const derive = (id: Buffer, alg: number, type: 'Key' | 'IV' | 'Token', length: number): Buffer =>
    Buffer.from(hkdfSync('sha256', masterSecret, salt, kdfInfo(id, alg, type, length), length))
  const perDirection = (alg: number, length: number): Record<Direction, Buffer> =>
    Object.freeze({
      'device-to-gateway': derive(senderId({ kid }, 'device-to-gateway'), alg, 'Key', length),
      'gateway-to-device': derive(senderId({ kid }, 'gateway-to-device'), alg, 'Key', length),
    })

  return Object.freeze({
    kid: Buffer.from(kid),
    aead: config.aead,
    mac,
    commonIv: derive(Buffer.alloc(0), config.aead, 'IV', aead.nonceLength),
    aeadKey: perDirection(config.aead, aead.keyLength),
    macKey: perDirection(mac, MAC_KEY_LENGTH),
    tokenKey: derive(kid, TOKEN_KEY_ALG, 'Token', MAC_KEY_LENGTH),
  })
}

/**
 * The AEAD nonce of RFC 8613 §5.2: S = length of the Sender ID, the Sender ID
 * left-padded to nonce length - 6 bytes, the Partial IV left-padded to 5
 * bytes, all XORed with the Common IV.
 */
export function nonceFor(ctx: DerivedContext, direction: Direction, seq: number): Buffer {
  const piv = encodePartialIv(seq)
  const id = senderId(ctx, direction)
  const length = aeadParams(ctx.aead).nonceLength
  const nonce = Buffer.alloc(length)
  nonce[0] = id.length
  id.copy(nonce, length - 5 - id.length)
  piv.copy(nonce, length - piv.length)
  for (let i = 0; i < length; i++) nonce[i]! ^= ctx.commonIv[i]!
  return nonce
}

function checkLength(what: string, value: Buffer, min: number, max: number): void {
  if (!Buffer.isBuffer(value) || value.length < min || value.length > max) {
    throw new CryptoError(
      'CRYPTO_ERR_BAD_KEY',
      `Expected a ${what} of ${min} to ${max} bytes, got ${sizeOf(value)}`,
    )
  }
}

function sizeOf(value: unknown): string {
  return Buffer.isBuffer(value) ? `${value.length} bytes` : typeof value
}
