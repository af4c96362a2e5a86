/**
 * The gateway's cloud envelope as the bench subscriber reads it, fast enough
 * for every message (docs/wire-format.md, bridge/envelope.ts):
 *
 *   COSE_Sign1 (untagged) [protected, {4: kid}, payload, signature]
 *   payload = [kind, gatewayId, deviceId, localTopic, gwSeq, timestampMs, protection, body]
 *   protection 1: body = HPKE [h'', {4: recipient kid, -4: enc}, ciphertext]
 *
 * `readEnvelope` walks the CBOR heads of that one shape by hand and verifies
 * nothing: the subscriber checks signatures (and opens HPKE) with the
 * project's own EnvelopeConsumer from dist/ on a sample, see bench/subscriber.mjs.
 * `createHpkeOpener` is a second, independent implementation of RFC 9180 base
 * mode for our suite (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
 * ChaCha20-Poly1305) on synchronous node:crypto primitives: the stamp of an
 * HPKE-sealed message is inside the ciphertext, so the subscriber must open
 * every one, and crypto/hpke.ts (hpke-js on WebCrypto) costs milliseconds per
 * message. Each sampled message is opened by both and the two must agree.
 */
import { createDecipheriv, createHmac, createPrivateKey, createPublicKey, diffieHellman } from 'node:crypto'

/** First byte of a gateway envelope (a CBOR array of 4); a raw bench payload starts with 0xb7. */
export const ENVELOPE_FIRST_BYTE = 0x84

/** Reads one CBOR head at `at`: { major, value, next }, or null (indefinite lengths, floats: not ours). */
function head(buf, at) {
  if (at >= buf.length) return null
  const b = buf[at]
  const major = b >> 5
  const ai = b & 31
  if (ai < 24) return { major, value: ai, next: at + 1 }
  if (ai === 24) return at + 2 <= buf.length ? { major, value: buf[at + 1], next: at + 2 } : null
  if (ai === 25) return at + 3 <= buf.length ? { major, value: buf.readUInt16BE(at + 1), next: at + 3 } : null
  if (ai === 26) return at + 5 <= buf.length ? { major, value: buf.readUInt32BE(at + 1), next: at + 5 } : null
  if (ai === 27 && at + 9 <= buf.length) {
    const value = Number(buf.readBigUInt64BE(at + 1))
    return Number.isSafeInteger(value) ? { major, value, next: at + 9 } : null
  }
  return null
}

function bytesAt(buf, at, major) {
  const h = head(buf, at)
  if (h === null || h.major !== major || h.next + h.value > buf.length) return null
  return { value: buf.subarray(h.next, h.next + h.value), next: h.next + h.value }
}

function uintAt(buf, at) {
  const h = head(buf, at)
  return h !== null && h.major === 0 ? h : null
}

/**
 * The fields of a gateway envelope, unverified; null when `payload` is not one.
 * Strings are returned as Buffers (no decoding per message); `signed` is the
 * whole Sign1 for the verifier.
 */
export function readEnvelope(payload) {
  if (payload.length < 8 || payload[0] !== ENVELOPE_FIRST_BYTE) return null
  const prot = bytesAt(payload, 1, 2)
  if (prot === null) return null
  const map = head(payload, prot.next)
  if (map === null || map.major !== 5) return null
  let at = map.next
  let kid = null
  for (let i = 0; i < map.value; i++) {
    const key = uintAt(payload, at)
    if (key === null) return null
    const value = bytesAt(payload, key.next, 2)
    if (value === null) return null
    if (key.value === 4) kid = value.value
    at = value.next
  }
  const inner = bytesAt(payload, at, 2)
  if (inner === null) return null
  const p = inner.value
  if (p[0] !== 0x88) return null
  const kind = uintAt(p, 1)
  if (kind === null) return null
  const gateway = bytesAt(p, kind.next, 3)
  if (gateway === null) return null
  let deviceId = null
  let next
  if (p[gateway.next] === 0xf6) next = gateway.next + 1
  else {
    const device = bytesAt(p, gateway.next, 3)
    if (device === null) return null
    deviceId = device.value
    next = device.next
  }
  const topic = bytesAt(p, next, 3)
  if (topic === null) return null
  const seq = uintAt(p, topic.next)
  if (seq === null) return null
  const timestamp = uintAt(p, seq.next)
  if (timestamp === null) return null
  const protection = uintAt(p, timestamp.next)
  if (protection === null) return null
  const body = bytesAt(p, protection.next, 2)
  if (body === null || body.next !== p.length) return null
  return {
    kid,
    kind: kind.value,
    deviceId,
    topic: topic.value,
    seq: seq.value,
    timestamp: timestamp.value,
    protection: protection.value,
    body: body.value,
  }
}

// ---------------------------------------------------------------- HPKE (RFC 9180, base mode)

const HPKE_INFO = Buffer.from('edge-gateway hpke v1', 'utf8')
const VERSION_LABEL = Buffer.from('HPKE-v1')
/** suite_id of the KEM (DHKEM(X25519, HKDF-SHA256) = 0x0020) and of the whole suite (+ HKDF-SHA256 0x0001, ChaCha20-Poly1305 0x0003). */
const KEM_SUITE = Buffer.from([0x4b, 0x45, 0x4d, 0x00, 0x20])
const HPKE_SUITE = Buffer.from([0x48, 0x50, 0x4b, 0x45, 0x00, 0x20, 0x00, 0x01, 0x00, 0x03])
const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex')
const EMPTY = Buffer.alloc(0)
const TAG = 16

const hmac = (key, ...parts) => {
  const h = createHmac('sha256', key)
  for (const part of parts) h.update(part)
  return h.digest()
}
const labeledExtract = (suite, salt, label, ikm) => hmac(salt, VERSION_LABEL, suite, Buffer.from(label), ikm)
/** LabeledExpand for L <= 32 (one HMAC block), which is all this suite needs. */
const labeledExpand = (suite, prk, label, info, length) => {
  const l = Buffer.from([length >> 8, length & 0xff])
  return hmac(prk, l, VERSION_LABEL, suite, Buffer.from(label), info, Buffer.from([1])).subarray(0, length)
}

const KEY_SCHEDULE_CONTEXT = Buffer.concat([
  Buffer.from([0]),
  labeledExtract(HPKE_SUITE, EMPTY, 'psk_id_hash', EMPTY),
  labeledExtract(HPKE_SUITE, EMPTY, 'info_hash', HPKE_INFO),
])

function keyAndNonce(dh, enc, pkR) {
  const eaePrk = labeledExtract(KEM_SUITE, EMPTY, 'eae_prk', dh)
  const shared = labeledExpand(KEM_SUITE, eaePrk, 'shared_secret', Buffer.concat([enc, pkR]), 32)
  const secret = labeledExtract(HPKE_SUITE, shared, 'secret', EMPTY)
  return {
    key: labeledExpand(HPKE_SUITE, secret, 'key', KEY_SCHEDULE_CONTEXT, 32),
    nonce: labeledExpand(HPKE_SUITE, secret, 'base_nonce', KEY_SCHEDULE_CONTEXT, 12),
  }
}

/** CBOR [1, "hpke", topic]: crypto/hpke.ts's aad. `topic` is a Buffer (UTF-8). */
export function hpkeAad(topic) {
  const h = topic.length < 24 ? Buffer.from([0x60 | topic.length]) : textHead(topic.length)
  return Buffer.concat([Buffer.from([0x83, 0x01, 0x64, 0x68, 0x70, 0x6b, 0x65]), h, topic])
}

function textHead(length) {
  if (length < 256) return Buffer.from([0x78, length])
  const out = Buffer.alloc(3)
  out[0] = 0x79
  out.writeUInt16BE(length, 1)
  return out
}

/**
 * An opener for payloads HPKE-sealed to one recipient (raw 32-byte X25519
 * private key, `kid` a Buffer): `open(body, topicBuffer)` returns the
 * plaintext, or null when the body is malformed, for another kid, or does not
 * authenticate.
 */
export function createHpkeOpener(privateKeyRaw, kid) {
  const skR = createPrivateKey({
    key: Buffer.concat([X25519_PKCS8, privateKeyRaw]),
    format: 'der',
    type: 'pkcs8',
  })
  const pkR = createPublicKey(skR).export({ type: 'spki', format: 'der' }).subarray(-32)
  return (body, topic) => {
    if (body.length < 4 || body[0] !== 0x83 || body[1] !== 0x40 || body[2] !== 0xa2) return null
    const k = uintAt(body, 3)
    if (k === null || k.value !== 4) return null
    const kidValue = bytesAt(body, k.next, 2)
    if (kidValue === null || !kidValue.value.equals(kid) || body[kidValue.next] !== 0x23) return null
    const enc = bytesAt(body, kidValue.next + 1, 2)
    if (enc === null || enc.value.length !== 32) return null
    const ct = bytesAt(body, enc.next, 2)
    if (ct === null || ct.next !== body.length || ct.value.length < TAG) return null
    try {
      // A JWK imports an order of magnitude faster than SPKI DER in Node 20.
      const pkE = createPublicKey({
        key: { kty: 'OKP', crv: 'X25519', x: enc.value.toString('base64url') },
        format: 'jwk',
      })
      const { key, nonce } = keyAndNonce(diffieHellman({ privateKey: skR, publicKey: pkE }), enc.value, pkR)
      const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG })
      d.setAAD(hpkeAad(topic), { plaintextLength: ct.value.length - TAG })
      d.setAuthTag(ct.value.subarray(ct.value.length - TAG))
      return Buffer.concat([d.update(ct.value.subarray(0, ct.value.length - TAG)), d.final()])
    } catch {
      return null
    }
  }
}
