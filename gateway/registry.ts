import type { KeyObject } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { trustedNow } from '../core/clock-floor.js'
import type { DerivedContext } from '../crypto/types.js'
import { compileClientIdPatterns } from './client-id.js'
import { GatewayError } from './errors.js'

/**
 * Checks a presented password; built once per device from its stored hash. `wanted`, asked when
 * a slow hash is about to start, says whether anyone still waits for the answer: if not (the
 * client gave up and closed), the check rejects with PasswordCheckAbandoned instead of spending it.
 */
export type PasswordVerifier = (password: Buffer, wanted?: () => boolean) => Promise<boolean>

/** What the registry is built from: the config's devices and Mosquitto's files, resolved. */
export interface DeviceSpec {
  id: string
  username?: string
  password?: PasswordVerifier
  /** Tells the stored hash from any other (gateway/auth/password-verifier.ts hashFingerprint); without it, no caching. */
  passwordFingerprint?: string
  psk?: {
    identity: string
    key: Buffer
    /** A key being replaced: accepted until `until` (ms since the epoch). */
    previous?: { identity: string; key: Buffer; until: number }
  }
  certificateCommonName?: string
  /** Exact or with `*`; default: the device id. */
  clientIds?: ReadonlyArray<string>
  groups?: ReadonlyArray<string>
  /** COSE payload keys derived from the device's master secret. */
  payload?: PayloadKeys
  /** The payload keys being replaced: accepted until `until` (ms since the epoch). */
  payloadPrevious?: PayloadKeys & { until: number }
  /** Verifies the device's COSE_Sign1 payloads. */
  signingKey?: KeyObject
}

export interface PayloadKeys {
  kid: Buffer
  context: DerivedContext
}

export interface Device {
  readonly id: string
  readonly username?: string
  readonly password?: PasswordVerifier
  readonly passwordFingerprint?: string
  readonly pskIdentity?: string
  readonly certificateCommonName?: string
  readonly groups: ReadonlyArray<string>
  readonly clientIdAllowed: (clientId: string) => boolean
  readonly payload?: PayloadKeys
  readonly payloadPrevious?: PayloadKeys & { readonly until: number }
  readonly signingKey?: KeyObject
}

/**
 * The keys the gateway seals and MACs for `device` with: its payload key, except during an overlap
 * while the device was last heard under the old kid (`lastKidHex`), which it may still be on.
 */
export function deliveryKeysFor(
  device: Device,
  lastKidHex: string | undefined,
  now?: number,
): PayloadKeys | undefined {
  const previous = device.payloadPrevious
  // The clock is read only during an overlap: this runs for each message delivered to the device.
  if (previous && lastKidHex === previous.kid.toString('hex') && (now ?? trustedNow()) < previous.until)
    return previous
  return device.payload
}

/**
 * The keys of `device` named by `kid`: its payload key, or the key it replaces while the overlap
 * lasts (`payloadKey.previous`); undefined for any other kid, and for the old one after `until`.
 */
export function payloadKeysFor(device: Device, kid: Buffer, now?: number): PayloadKeys | undefined {
  if (device.payload?.kid.equals(kid)) return device.payload
  const previous = device.payloadPrevious
  return previous?.kid.equals(kid) && (now ?? trustedNow()) < previous.until ? previous : undefined
}

const MAX_PSK_FILE_BYTES = 1024

/**
 * The CONNECT username that names a device: its `username`, or, for a device
 * with a payload key and no username (a one-time-token device), its id. MQTT
 * 3.1.1 allows a password (the token) only with a username (MQTT-3.1.2-22).
 */
export function connectUsernameOf(spec: Pick<DeviceSpec, 'id' | 'username' | 'payload'>): string | undefined {
  return spec.username ?? (spec.payload ? spec.id : undefined)
}

/** Reads a PSK file: hex, 16 to 64 bytes, surrounding white space ignored (as mosquitto's psk_file). */
export async function readPskFile(file: string): Promise<Buffer> {
  const raw = await readFile(file)
  const text = raw
    .subarray(0, MAX_PSK_FILE_BYTES + 1)
    .toString('utf8')
    .trim()
  if (raw.length > MAX_PSK_FILE_BYTES || !/^([0-9a-fA-F]{2}){16,64}$/.test(text)) {
    throw new GatewayError(
      'GW_ERR_BAD_PSK_FILE',
      `${file}: expected a PSK as 32 to 128 hex digits (16 to 64 bytes), got ${raw.length} bytes of something else`,
    )
  }
  return Buffer.from(text, 'hex')
}

/**
 * The devices the gateway knows, indexed by every identity they can present.
 * PSK keys are kept here, out of the device records, so a device record can be
 * logged without thought. Immutable once built: a reload builds a new one.
 */
export class DeviceRegistry {
  private readonly byId = new Map<string, Device>()
  private readonly byUsername = new Map<string, Device>()
  private readonly byPskIdentity = new Map<string, Device>()
  private readonly byCommonName = new Map<string, Device>()
  private readonly pskKeys = new Map<string, Buffer>()
  /** PSK identities being replaced: when each stops being accepted (ms since the epoch). */
  private readonly pskRetiresAt = new Map<string, number>()
  private readonly byKeyId = new Map<string, Device>()

  constructor(specs: Iterable<DeviceSpec> = []) {
    for (const spec of specs) this.add(spec)
  }

  private add(spec: DeviceSpec): void {
    const device: Device = {
      id: spec.id,
      ...(spec.username !== undefined && { username: spec.username }),
      ...(spec.password !== undefined && { password: spec.password }),
      ...(spec.password !== undefined &&
        spec.passwordFingerprint !== undefined && { passwordFingerprint: spec.passwordFingerprint }),
      ...(spec.psk && { pskIdentity: spec.psk.identity }),
      ...(spec.certificateCommonName !== undefined && { certificateCommonName: spec.certificateCommonName }),
      groups: [...(spec.groups ?? [])],
      clientIdAllowed: compileClientIdPatterns(spec.clientIds ?? [spec.id]),
      ...(spec.payload && { payload: spec.payload }),
      ...(spec.payloadPrevious && { payloadPrevious: spec.payloadPrevious }),
      ...(spec.signingKey && { signingKey: spec.signingKey }),
    }
    this.byId.set(device.id, device)
    const connectName = connectUsernameOf(spec)
    if (connectName !== undefined) {
      const other = this.byUsername.get(connectName)
      if (other && other.id !== device.id) {
        throw new GatewayError(
          'GW_ERR_DUPLICATE_USERNAME',
          `devices ${other.id} and ${device.id} both answer to the CONNECT username "${connectName}"`,
        )
      }
      this.byUsername.set(connectName, device)
    }
    if (spec.psk) {
      for (const psk of [spec.psk, spec.psk.previous]) {
        if (!psk) continue
        const other = this.byPskIdentity.get(psk.identity)
        if (other && other.id !== device.id) {
          throw new GatewayError(
            'GW_ERR_DUPLICATE_PSK_IDENTITY',
            `devices ${other.id} and ${device.id} both use the PSK identity "${psk.identity}"`,
          )
        }
        this.byPskIdentity.set(psk.identity, device)
        this.pskKeys.set(psk.identity, psk.key)
      }
      if (spec.psk.previous) this.pskRetiresAt.set(spec.psk.previous.identity, spec.psk.previous.until)
    }
    if (device.certificateCommonName !== undefined)
      this.byCommonName.set(device.certificateCommonName, device)
    if (device.payload) this.byKeyId.set(device.payload.kid.toString('hex'), device)
    if (device.payloadPrevious) this.byKeyId.set(device.payloadPrevious.kid.toString('hex'), device)
  }

  get size(): number {
    return this.byId.size
  }

  devices(): IterableIterator<Device> {
    return this.byId.values()
  }

  byDeviceId(id: string): Device | undefined {
    return this.byId.get(id)
  }

  byUser(username: string): Device | undefined {
    return this.byUsername.get(username)
  }

  /** The device of a PSK identity; an identity past the end of its overlap (`psk.previous.until`) has none. */
  byPsk(identity: string, now = trustedNow()): Device | undefined {
    return this.pskRetired(identity, now) ? undefined : this.byPskIdentity.get(identity)
  }

  /** The device a PSK identity belongs or belonged to, retired or not (for logs). */
  pskOwner(identity: string): Device | undefined {
    return this.byPskIdentity.get(identity)
  }

  /** Whether `identity` is a replaced PSK whose overlap has ended. */
  pskRetired(identity: string, now = trustedNow()): boolean {
    const until = this.pskRetiresAt.get(identity)
    return until !== undefined && now >= until
  }

  /** The earliest end of a PSK overlap after `now`, if any (when connections must be checked again). */
  nextPskRetirement(now = trustedNow()): number | undefined {
    let next: number | undefined
    for (const until of this.pskRetiresAt.values())
      if (until > now && (next === undefined || until < next)) next = until
    return next
  }

  byCertificate(commonName: string): Device | undefined {
    return this.byCommonName.get(commonName)
  }

  /** The device whose payload key id (hex, lower case) this is. */
  byKid(kidHex: string): Device | undefined {
    return this.byKeyId.get(kidHex)
  }

  /** The key for a PSK identity, for the TLS handshake only; none once the identity is retired. */
  pskKey(identity: string, now = trustedNow()): Buffer | undefined {
    return this.pskRetired(identity, now) ? undefined : this.pskKeys.get(identity)
  }
}
