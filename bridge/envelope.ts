import {
  createHash,
  createPublicKey,
  type KeyObject,
  sign as rawSign,
  verify as rawVerify,
  X509Certificate,
} from 'node:crypto'
import { decodeCbor, encodeCbor } from '../crypto/cbor.js'
import { sign1, verify1 } from '../crypto/sign1.js'
import { Alg, type OpenFailure } from '../crypto/types.js'

/**
 * What the gateway puts on the cloud link, and what the cloud sends back
 * (docs/cloud-envelope.md):
 * - every uplink message and every control message is an untagged COSE_Sign1
 *   made with the gateway's Ed25519 signing key; its payload is a CBOR array
 *   naming the gateway, the device, the original topic, the gateway sequence
 *   number and the time the gateway accepted the message; the cloud topic is
 *   the external AAD, so a message moved to another topic fails to verify.
 * - the signing key is bound to the gateway's TLS client certificate by a key
 *   binding signed with the certificate's own key (like a TLS delegated
 *   credential, RFC 9345), published retained on the control tree.
 * - a downlink command is a COSE_Sign1 by an operator key the gateway trusts,
 *   naming the gateway, the device, a fresh nonce and a timestamp.
 */

export const ENVELOPE_VERSION = 1

/** What an uplink or control envelope carries. */
export const EnvelopeKind = { message: 1, control: 2 } as const
export type EnvelopeKind = (typeof EnvelopeKind)[keyof typeof EnvelopeKind]

/** How the body of a device message is protected. */
export const BodyProtection = {
  /** The device payload as the gateway opened it (over the cloud's mutual TLS only). */
  plain: 0,
  /** Opened by the gateway, then HPKE-sealed to a cloud recipient (client-to-broker). */
  hpke: 1,
  /** The device's payload forwarded unchanged; the gateway cannot read it (end-to-end). */
  device: 2,
} as const
export type BodyProtection = (typeof BodyProtection)[keyof typeof BodyProtection]

export interface UplinkEnvelope {
  kind: EnvelopeKind
  gatewayId: string
  /** The device that published it; null for control messages. */
  deviceId: string | null
  /** The LAN topic the device published on (for control messages, the control topic's last level). */
  topic: string
  /** The gateway sequence number (0 for control messages). */
  seq: number
  /** When the gateway accepted it, in ms since the epoch. */
  timestamp: number
  protection: BodyProtection
  body: Buffer
}

/** Largest envelope the verifier decodes; larger ones are 'oversize'. */
export const MAX_ENVELOPE_BYTES = 1024 * 1024

/** A signing key's kid (from its private or public key): the first 8 bytes of SHA-256 over its SubjectPublicKeyInfo (DER). */
export function signingKid(key: KeyObject): Buffer {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest()
    .subarray(0, 8)
}

function uplinkAad(cloudTopic: string): Buffer {
  return encodeCbor([ENVELOPE_VERSION, 'edge-gateway uplink', cloudTopic])
}

/** Signs an envelope for `cloudTopic` with the gateway's Ed25519 key. */
export function signEnvelope(
  key: KeyObject,
  kid: Buffer,
  cloudTopic: string,
  envelope: UplinkEnvelope,
): Buffer {
  const payload = encodeCbor([
    envelope.kind,
    envelope.gatewayId,
    envelope.deviceId,
    envelope.topic,
    envelope.seq,
    envelope.timestamp,
    envelope.protection,
    envelope.body,
  ])
  return sign1(key, Alg.EDDSA, kid, payload, uplinkAad(cloudTopic))
}

export type EnvelopeFailure = OpenFailure | 'wrong_gateway'

/**
 * Verifies an uplink or control envelope received on `cloudTopic`. `resolveKey`
 * maps a kid to a gateway signing key learnt from a verified key binding, with
 * the gateway id that binding names; an envelope naming another gateway is
 * refused. Never throws for received bytes.
 */
export function verifyEnvelope(
  resolveKey: (kid: Buffer) => { key: KeyObject; gatewayId: string } | undefined,
  cloudTopic: string,
  bytes: Buffer,
): { envelope: UplinkEnvelope; kid: Buffer } | { failure: EnvelopeFailure; kid?: Buffer } {
  let boundGateway: string | undefined
  const result = verify1(
    (kid) => {
      const found = resolveKey(kid)
      boundGateway = found?.gatewayId
      return found?.key
    },
    bytes,
    uplinkAad(cloudTopic),
    MAX_ENVELOPE_BYTES,
  )
  if ('failure' in result) return { failure: result.failure }
  const envelope = decodeEnvelopePayload(result.payload)
  if (!envelope) return { failure: 'malformed', kid: result.kid }
  if (envelope.gatewayId !== boundGateway) return { failure: 'wrong_gateway', kid: result.kid }
  return { envelope, kid: result.kid }
}

function decodeEnvelopePayload(payload: Buffer): UplinkEnvelope | undefined {
  let value: unknown
  try {
    value = decodeCbor(payload, { maxBytes: payload.length, maxDepth: 1 })
  } catch {
    return undefined
  }
  if (!Array.isArray(value) || value.length !== 8) return undefined
  const [kind, gatewayId, deviceId, topic, seq, timestamp, protection, body] = value
  if (kind !== EnvelopeKind.message && kind !== EnvelopeKind.control) return undefined
  if (typeof gatewayId !== 'string' || typeof topic !== 'string') return undefined
  if (deviceId !== null && typeof deviceId !== 'string') return undefined
  if (!isUint(seq) || !isUint(timestamp)) return undefined
  if (protection !== 0 && protection !== 1 && protection !== 2) return undefined
  if (!Buffer.isBuffer(body)) return undefined
  return { kind, gatewayId, deviceId, topic, seq, timestamp, protection, body }
}

function isUint(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
}

// ---------------------------------------------------------------- key binding

export interface KeyBinding {
  gatewayId: string
  kid: Buffer
  /** The Ed25519 signing key, as SubjectPublicKeyInfo DER. */
  signingKey: Buffer
  /** The gateway's TLS client certificate (DER) whose key signed this binding. */
  certificate: Buffer
  issuedAt: number
}

const BINDING_CONTEXT = 'edge-gateway key binding'

function bindingToBeSigned(b: KeyBinding): Buffer {
  return encodeCbor([
    ENVELOPE_VERSION,
    BINDING_CONTEXT,
    b.gatewayId,
    b.kid,
    b.signingKey,
    b.certificate,
    b.issuedAt,
  ])
}

/** EdDSA signs the message itself (no digest to choose); RSA and ECDSA sign its SHA-256. */
function bindingDigest(key: KeyObject): string | null {
  return key.asymmetricKeyType === 'ed25519' || key.asymmetricKeyType === 'ed448' ? null : 'sha256'
}

/**
 * CBOR [tbs, signature]: the binding signed with the certificate's private key
 * (SHA-256 with RSA PKCS#1 v1.5 or ECDSA, or Ed25519/Ed448 itself, whatever the certificate's key is).
 */
export function encodeKeyBinding(binding: KeyBinding, certificateKey: KeyObject): Buffer {
  const tbs = bindingToBeSigned(binding)
  return encodeCbor([tbs, rawSign(bindingDigest(certificateKey), tbs, certificateKey)])
}

export type BindingFailure =
  | 'malformed'
  | 'untrusted_certificate'
  | 'certificate_expired'
  | 'certificate_name'
  | 'bad_signature'
  | 'bad_kid'

/**
 * The CA, or the CAs of a bundle (the old and the new one while a rotation moves gateways to a new
 * CA), that a key binding's certificate must be issued by.
 */
export type TrustAnchors = X509Certificate | readonly X509Certificate[]

/**
 * Verifies a key binding: the certificate chains to `ca`, or to one of the CAs of a bundle (one
 * level, as the lab and the gateway's CA issue them), is valid now, names the gateway in its CN
 * (or a DNS SAN), signed the binding, and the kid matches the key.
 */
export function verifyKeyBinding(
  bytes: Buffer,
  ca: TrustAnchors,
  now = Date.now(),
):
  | { binding: KeyBinding; signingKey: KeyObject; certificate: X509Certificate }
  | { failure: BindingFailure } {
  let outer: unknown
  try {
    outer = decodeCbor(bytes, { maxBytes: 64 * 1024, maxDepth: 1 })
  } catch {
    return { failure: 'malformed' }
  }
  if (!Array.isArray(outer) || outer.length !== 2) return { failure: 'malformed' }
  const [tbs, signature] = outer
  if (!Buffer.isBuffer(tbs) || !Buffer.isBuffer(signature)) return { failure: 'malformed' }
  let inner: unknown
  try {
    inner = decodeCbor(tbs, { maxBytes: tbs.length, maxDepth: 1 })
  } catch {
    return { failure: 'malformed' }
  }
  if (!Array.isArray(inner) || inner.length !== 7) return { failure: 'malformed' }
  const [version, context, gatewayId, kid, signingKey, certificate, issuedAt] = inner
  if (version !== ENVELOPE_VERSION || context !== BINDING_CONTEXT) return { failure: 'malformed' }
  if (typeof gatewayId !== 'string' || !Buffer.isBuffer(kid) || !Buffer.isBuffer(signingKey)) {
    return { failure: 'malformed' }
  }
  if (!Buffer.isBuffer(certificate) || !isUint(issuedAt)) return { failure: 'malformed' }
  let cert: X509Certificate
  let key: KeyObject
  try {
    cert = new X509Certificate(certificate)
    key = createPublicKey({ key: signingKey, format: 'der', type: 'spki' })
  } catch {
    return { failure: 'malformed' }
  }
  const anchors = ca instanceof X509Certificate ? [ca] : ca
  if (!anchors.some((a) => cert.checkIssued(a) && cert.verify(a.publicKey))) {
    return { failure: 'untrusted_certificate' }
  }
  if (now < Date.parse(cert.validFrom) || now > Date.parse(cert.validTo)) {
    return { failure: 'certificate_expired' }
  }
  if (!certificateNames(cert).includes(gatewayId)) return { failure: 'certificate_name' }
  let ok = false
  try {
    ok = rawVerify(bindingDigest(cert.publicKey), tbs, cert.publicKey, signature)
  } catch {
    ok = false
  }
  if (!ok) return { failure: 'bad_signature' }
  if (key.asymmetricKeyType !== 'ed25519' || !signingKid(key).equals(kid)) return { failure: 'bad_kid' }
  return {
    binding: { gatewayId, kid, signingKey, certificate, issuedAt },
    signingKey: key,
    certificate: cert,
  }
}

/** The certificate's CN and DNS subject alternative names. */
export function certificateNames(cert: X509Certificate): string[] {
  const names: string[] = []
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1]
  if (cn) names.push(cn)
  for (const part of (cert.subjectAltName ?? '').split(', ')) {
    if (part.startsWith('DNS:')) names.push(part.slice(4))
  }
  return names
}

// ---------------------------------------------------------------- downlink commands

export interface Command {
  gatewayId: string
  deviceId: string
  /** 16 random bytes; the gateway remembers each for as long as the command could be fresh. */
  nonce: Buffer
  /** When the operator signed it, in ms since the epoch. */
  timestamp: number
  body: Buffer
}

export const NONCE_LENGTH = 16
export const MAX_COMMAND_BYTES = 64 * 1024

function commandAad(cloudTopic: string): Buffer {
  return encodeCbor([ENVELOPE_VERSION, 'edge-gateway command', cloudTopic])
}

/** Signs a command for `cloudTopic` with an operator key (Ed25519 or P-256). */
export function signCommand(key: KeyObject, kid: Buffer, cloudTopic: string, command: Command): Buffer {
  const alg = key.asymmetricKeyType === 'ed25519' ? Alg.EDDSA : Alg.ES256
  const payload = encodeCbor([
    ENVELOPE_VERSION,
    command.gatewayId,
    command.deviceId,
    command.nonce,
    command.timestamp,
    command.body,
  ])
  return sign1(key, alg, kid, payload, commandAad(cloudTopic))
}

/** Verifies a command's signature and shape (not freshness or replay: the caller's state). Never throws. */
export function verifyCommand(
  resolveKey: (kid: Buffer) => KeyObject | undefined,
  cloudTopic: string,
  bytes: Buffer,
): { command: Command; kid: Buffer } | { failure: OpenFailure } {
  const result = verify1(resolveKey, bytes, commandAad(cloudTopic), MAX_COMMAND_BYTES)
  if ('failure' in result) return { failure: result.failure }
  let value: unknown
  try {
    value = decodeCbor(result.payload, { maxBytes: result.payload.length, maxDepth: 1 })
  } catch {
    return { failure: 'malformed' }
  }
  if (!Array.isArray(value) || value.length !== 6) return { failure: 'malformed' }
  const [version, gatewayId, deviceId, nonce, timestamp, body] = value
  if (version !== ENVELOPE_VERSION || typeof gatewayId !== 'string' || typeof deviceId !== 'string') {
    return { failure: 'malformed' }
  }
  if (
    !Buffer.isBuffer(nonce) ||
    nonce.length !== NONCE_LENGTH ||
    !isUint(timestamp) ||
    !Buffer.isBuffer(body)
  ) {
    return { failure: 'malformed' }
  }
  return { command: { gatewayId, deviceId, nonce, timestamp, body }, kid: result.kid }
}

/** An operator key's kid when none is configured: the first 8 bytes of SHA-256 over its SPKI. */
export const operatorKid = signingKid
