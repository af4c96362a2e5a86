import {
  createCipheriv,
  createHmac,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto'
import { encodeCbor } from './cbor.js'
import { CryptoError } from './errors.js'
import {
  HPKE_ENC_LENGTH,
  HPKE_INFO,
  HPKE_KEY_LENGTH,
  HpkeHeaderLabel,
  type HpkeSealRecipient,
  hpkeAad,
  MAX_HPKE_KID_LENGTH,
} from './hpke-format.js'

/**
 * HPKE base-mode sealing (RFC 9180: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
 * ChaCha20-Poly1305) on synchronous node:crypto, producing exactly the format
 * of crypto/hpke.ts (which opens it; test/crypto/hpke-seal-sync.test.ts checks
 * both ways). The gateway seals every message of a `sealFor` mapping, and the
 * WebCrypto path of hpke-js costs milliseconds per seal; this one a fraction.
 */
const VERSION_LABEL = Buffer.from('HPKE-v1')
/** suite_id of the KEM (0x0020) and of the whole suite (KEM 0x0020, KDF 0x0001, AEAD 0x0003). */
const KEM_SUITE = Buffer.from([0x4b, 0x45, 0x4d, 0x00, 0x20])
const HPKE_SUITE = Buffer.from([0x48, 0x50, 0x4b, 0x45, 0x00, 0x20, 0x00, 0x01, 0x00, 0x03])
const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex')
const EMPTY = Buffer.alloc(0)
const TAG_LENGTH = 16

function hmac(key: Buffer, ...parts: Buffer[]): Buffer {
  const h = createHmac('sha256', key)
  for (const part of parts) h.update(part)
  return h.digest()
}

function labeledExtract(suite: Buffer, salt: Buffer, label: string, ikm: Buffer): Buffer {
  return hmac(salt, VERSION_LABEL, suite, Buffer.from(label), ikm)
}

/** LabeledExpand for L <= 32: one HMAC block, all this suite needs. */
function labeledExpand(suite: Buffer, prk: Buffer, label: string, info: Buffer, length: number): Buffer {
  const l = Buffer.from([length >> 8, length & 0xff])
  return hmac(prk, l, VERSION_LABEL, suite, Buffer.from(label), info, Buffer.from([1])).subarray(0, length)
}

const KEY_SCHEDULE_CONTEXT = Buffer.concat([
  Buffer.from([0]),
  labeledExtract(HPKE_SUITE, EMPTY, 'psk_id_hash', EMPTY),
  labeledExtract(HPKE_SUITE, EMPTY, 'info_hash', HPKE_INFO),
])

/**
 * Whether `publicKey` (X25519) is of low order: every Diffie-Hellman with it gives
 * zeros (OpenSSL refuses the derivation), so nothing can be sealed to it. The
 * clamped scalar of any key pair is a multiple of the cofactor, so one exchange
 * with a fresh key pair tells.
 */
function lowOrder(publicKey: KeyObject): boolean {
  try {
    const dh = diffieHellman({ privateKey: generateKeyPairSync('x25519').privateKey, publicKey })
    return dh.every((b) => b === 0)
  } catch {
    return true
  }
}

/** A recipient ready for repeated sealing: its public key imported once. */
export class HpkeSealer {
  private readonly publicKey: KeyObject

  constructor(private readonly recipient: HpkeSealRecipient) {
    if (recipient.kid.length < 1 || recipient.kid.length > MAX_HPKE_KID_LENGTH) {
      throw new CryptoError(
        'CRYPTO_ERR_BAD_KEY',
        `Expected an HPKE recipient kid of 1 to ${MAX_HPKE_KID_LENGTH} bytes`,
      )
    }
    if (recipient.publicKey.length !== HPKE_KEY_LENGTH) {
      throw new CryptoError('CRYPTO_ERR_BAD_KEY', 'Expected a raw 32-byte X25519 public key')
    }
    try {
      this.publicKey = createPublicKey({
        key: Buffer.concat([X25519_SPKI_PREFIX, recipient.publicKey]),
        format: 'der',
        type: 'spki',
      })
    } catch (err) {
      throw new CryptoError('CRYPTO_ERR_BAD_KEY', 'The HPKE recipient public key is not a valid X25519 key', {
        cause: err,
      })
    }
    // Refused here, at start, not at each seal: a message of such a mapping could never leave.
    if (lowOrder(this.publicKey)) {
      throw new CryptoError('CRYPTO_ERR_BAD_KEY', 'The HPKE recipient public key is unusable (low order)')
    }
  }

  /** Seals `plaintext` for `topic` with a fresh ephemeral key. */
  seal(plaintext: Buffer, topic: string): Buffer {
    const ephemeral = generateKeyPairSync('x25519')
    const enc = ephemeral.publicKey.export({ type: 'spki', format: 'der' }).subarray(-HPKE_ENC_LENGTH)
    const dh = diffieHellman({ privateKey: ephemeral.privateKey, publicKey: this.publicKey })
    if (dh.every((b) => b === 0)) {
      throw new CryptoError('CRYPTO_ERR_BAD_KEY', 'The HPKE recipient public key is unusable (low order)')
    }
    const eaePrk = labeledExtract(KEM_SUITE, EMPTY, 'eae_prk', dh)
    const kemContext = Buffer.concat([enc, this.recipient.publicKey])
    const shared = labeledExpand(KEM_SUITE, eaePrk, 'shared_secret', kemContext, 32)
    const secret = labeledExtract(HPKE_SUITE, shared, 'secret', EMPTY)
    const key = labeledExpand(HPKE_SUITE, secret, 'key', KEY_SCHEDULE_CONTEXT, 32)
    const nonce = labeledExpand(HPKE_SUITE, secret, 'base_nonce', KEY_SCHEDULE_CONTEXT, 12)
    const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_LENGTH })
    cipher.setAAD(hpkeAad(topic), { plaintextLength: plaintext.length })
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()])
    return encodeCbor([
      EMPTY,
      new Map<number, Buffer>([
        [HpkeHeaderLabel.kid, this.recipient.kid],
        [HpkeHeaderLabel.enc, enc],
      ]),
      ciphertext,
    ])
  }
}
