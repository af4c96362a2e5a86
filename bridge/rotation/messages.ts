import { z } from 'zod'
import { PARSE_ONCE } from '../../core/parse-once.js'

/**
 * The bodies of rotation commands (operator to gateway, on `<prefix>/<gateway>/rotate`, inside a
 * signed command whose device id is empty) and of the gateway's replies (on
 * `<prefix>/<gateway>/rotation`, inside a signed control envelope). JSON; docs/rotation.md.
 */
const request = z.string().regex(/^[0-9a-f]{32}$/, '16 bytes, hex')
const pem = (max: number) => z.string().min(1).max(max)

/** At most 16 certificates in a pushed CA bundle. */
export const MAX_BUNDLE_CERTIFICATES = 16

export const rotationCommandSchema = z.discriminatedUnion('type', [
  /** Make (or reuse) the pending key pair and publish a CSR for it. */
  z.strictObject({ type: z.literal('csr-request'), request }),
  /** The certificate issued for the pending CSR: check, try, switch, write, confirm. */
  z.strictObject({ type: z.literal('certificate'), request, certificate: pem(16 * 1024) }),
  /** A new bundle of CAs for the broker, the old one kept beside it for `overlapDays` (at least 1). */
  z.strictObject({
    type: z.literal('trust'),
    request,
    bundle: pem(60 * 1024),
    overlapDays: z.number().int().min(1).max(365),
  }),
  /**
   * A TLS-PSK device's new key, RSA-OAEP (SHA-256) encrypted to the gateway's client certificate
   * key, base64; applied as `device rotate` does, the old identity accepted for `overlapHours`.
   */
  z.strictObject({
    type: z.literal('device-psk'),
    request,
    device: z.string().min(1).max(64),
    identity: z.string().min(1).max(128).optional(),
    sealedKey: z
      .string()
      .min(1)
      .max(1024)
      .regex(/^[A-Za-z0-9+/]+={0,2}$/, 'base64'),
    overlapHours: z.number().gt(0).max(8760),
  }),
  /**
   * A payload device's new master secret, made on the gateway and sent to the device sealed under
   * its current key, retained on the LAN topic `topic`; the old key accepted for `overlapHours`.
   */
  z.strictObject({
    type: z.literal('device-key'),
    request,
    device: z.string().min(1).max(64),
    topic: z.string().min(1).max(1024),
    overlapHours: z.number().gt(0).max(8760),
  }),
])

export type RotationCommand = z.output<typeof rotationCommandSchema>

/** Reads a command body; undefined when it is not one (refused as `malformed`). */
export function parseRotationCommand(body: Buffer): RotationCommand | undefined {
  let value: unknown
  try {
    value = JSON.parse(body.toString('utf8'))
  } catch {
    return undefined
  }
  const result = rotationCommandSchema.safeParse(value, PARSE_ONCE)
  return result.success ? result.data : undefined
}

/** What the gateway answers on `<prefix>/<gateway>/rotation`. */
export type RotationReply =
  | { state: 'csr'; request: string | null; reason: 'requested' | 'due'; csr: string }
  | {
      state: 'applied'
      request: string
      serial: string
      notAfter: string
      /** The certificate's SHA-256 fingerprint, as OpenSSL prints it. */
      fingerprint256: string
    }
  | { state: 'refused'; request: string | null; reason: string; detail: string }
  | { state: 'rolled_back'; request: string; reason: string; detail: string }
  | { state: 'trusted'; request: string; certificates: number; overlapUntil: string | null }
  | {
      state: 'device_psk'
      request: string
      device: string
      identity: string
      previousIdentity: string
      /** When the old identity stops being accepted. */
      until: string
    }
  | {
      state: 'device_key'
      request: string
      device: string
      /** The LAN topic the sealed key update is retained on. */
      topic: string
      kid: string
      previousKid: string
      /** When the old kid stops being accepted. */
      until: string
    }

/** The command device id that addresses the gateway itself (commands for devices name one). */
export const GATEWAY_ITSELF = ''
