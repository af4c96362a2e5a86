export { AEAD_PARAMS, type AeadParams, MAC_TAG_LENGTH } from './algorithms.js'
export { type CborLimits, type CborMap, type CborValue, decodeCbor, encodeCbor } from './cbor.js'
export { DIRECTIONS, deriveContext, kdfInfo, MAX_KID_LENGTH, nonceFor, senderId } from './context.js'
export { open, readHeader, seal } from './encrypt0.js'
export { CryptoError, type CryptoErrorCode } from './errors.js'
export { macOpen, macProtect, readMacHeader } from './mac0.js'
export { decodePartialIv, encodePartialIv, MAX_SEQ } from './partial-iv.js'
export { MAX_SIGN_KID_LENGTH, sign1, verify1 } from './sign1.js'
export { externalAad, FORMAT_VERSION } from './structures.js'
export {
  checkToken,
  DEFAULT_TOKEN_WINDOW_SECONDS,
  makeToken,
  TOKEN_MAX_BYTES,
  type TokenFailure,
  tokenAad,
} from './token.js'
export * from './types.js'
