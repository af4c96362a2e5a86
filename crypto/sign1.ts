import { type KeyObject, sign, verify } from 'node:crypto'
import { isSignAlg } from './algorithms.js'
import { type CborMap, decodeCbor, encodeCbor } from './cbor.js'
import { HeaderLabel } from './envelope.js'
import { CryptoError } from './errors.js'
import { sigStructure } from './structures.js'
import { Alg, type OpenFailure, type SignAlg } from './types.js'

/** Signing key ids are longer than device kids may be (a certificate fingerprint, say), but bounded. */
export const MAX_SIGN_KID_LENGTH = 32
/** Ed25519 signatures and ES256 r || s (RFC 9053 §2.1) are both 64 bytes. */
export const SIGNATURE_LENGTH = 64

/**
 * An untagged COSE_Sign1: [protected: bstr .cbor {1: alg}, {4: kid}, payload, signature],
 * signing the Sig_structure ["Signature1", protected, externalAad, payload].
 */
export function sign1(
  key: KeyObject,
  alg: SignAlg,
  kid: Buffer,
  payload: Buffer,
  externalAad: Buffer,
): Buffer {
  if (!isSignAlg(alg))
    throw new CryptoError('CRYPTO_ERR_BAD_ALG', `Expected alg -8 or -7, got ${String(alg)}`)
  if (key.type !== 'private' || !keyFits(key, alg)) {
    throw new CryptoError(
      'CRYPTO_ERR_BAD_KEY',
      `Expected a private ${alg === Alg.EDDSA ? 'Ed25519' : 'P-256'} key for alg ${alg}, got a ${key.type} ${key.asymmetricKeyType ?? 'secret'} key`,
    )
  }
  if (kid.length < 1 || kid.length > MAX_SIGN_KID_LENGTH) {
    throw new CryptoError(
      'CRYPTO_ERR_BAD_KEY',
      `Expected a kid of 1 to ${MAX_SIGN_KID_LENGTH} bytes, got ${kid.length}`,
    )
  }
  const protectedHeader = encodeCbor(new Map([[HeaderLabel.alg, alg]]))
  const signature = rawSign(key, alg, sigStructure(protectedHeader, externalAad, payload))
  const unprotected: CborMap = new Map([[HeaderLabel.kid, kid]])
  return encodeCbor([protectedHeader, unprotected, payload, signature])
}

/**
 * Verify an untagged COSE_Sign1. `resolveKey` maps the kid to a public key;
 * the alg in the protected header must suit that key's type. Never throws for
 * received bytes.
 */
export function verify1(
  resolveKey: (kid: Buffer) => KeyObject | undefined,
  bytes: Buffer,
  externalAad: Buffer,
  maxBytes: number,
): { payload: Buffer; kid: Buffer; alg: SignAlg } | { failure: OpenFailure } {
  const parsed = parse(bytes, maxBytes)
  if (typeof parsed === 'string') return { failure: parsed }
  const { protectedHeader, alg, kid, payload, signature } = parsed
  const key = resolveKey(kid)
  if (!key) return { failure: 'unknown_kid' }
  if (!keyFits(key, alg)) return { failure: 'bad_signature' }
  const data = sigStructure(protectedHeader, externalAad, payload)
  let ok = false
  try {
    ok =
      alg === Alg.EDDSA
        ? verify(null, data, key, signature)
        : verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature)
  } catch {
    ok = false
  }
  return ok ? { payload, kid, alg } : { failure: 'bad_signature' }
}

interface ParsedSign1 {
  protectedHeader: Buffer
  alg: SignAlg
  kid: Buffer
  payload: Buffer
  signature: Buffer
}

function parse(bytes: Buffer, maxBytes: number): ParsedSign1 | 'malformed' | 'oversize' {
  if (bytes.length > maxBytes) return 'oversize'
  let value: unknown
  let header: unknown
  try {
    value = decodeCbor(bytes, { maxBytes, maxDepth: 2 })
    if (!Array.isArray(value) || value.length !== 4 || !Buffer.isBuffer(value[0])) return 'malformed'
    header = decodeCbor(value[0], { maxBytes: value[0].length, maxDepth: 1 })
  } catch {
    return 'malformed'
  }
  const [protectedHeader, unprotected, payload, signature] = value as [Buffer, unknown, unknown, unknown]
  if (!(header instanceof Map) || header.size !== 1) return 'malformed'
  const alg = header.get(HeaderLabel.alg)
  if (!isSignAlg(alg)) return 'malformed'
  if (!(unprotected instanceof Map) || unprotected.size !== 1) return 'malformed'
  const kid = unprotected.get(HeaderLabel.kid)
  if (!Buffer.isBuffer(kid) || kid.length < 1 || kid.length > MAX_SIGN_KID_LENGTH) return 'malformed'
  if (!Buffer.isBuffer(payload) || !Buffer.isBuffer(signature)) return 'malformed'
  if (signature.length !== SIGNATURE_LENGTH) return 'malformed'
  return { protectedHeader, alg, kid, payload, signature }
}

function keyFits(key: KeyObject, alg: SignAlg): boolean {
  if (alg === Alg.EDDSA) return key.asymmetricKeyType === 'ed25519'
  return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1'
}

function rawSign(key: KeyObject, alg: SignAlg, data: Buffer): Buffer {
  return alg === Alg.EDDSA ? sign(null, data, key) : sign('sha256', data, { key, dsaEncoding: 'ieee-p1363' })
}
