import { open, readHeader } from '../../crypto/encrypt0.js'
import { macOpen, readMacHeader } from '../../crypto/mac0.js'
import type { ReplayGuard } from '../../crypto/replay-guard.js'
import { verify1 } from '../../crypto/sign1.js'
import type { OpenFailure } from '../../crypto/types.js'
import { type Device, type DeviceRegistry, payloadKeysFor } from '../registry.js'
import type { ProtectionMode } from './requirements.js'

export type OpenResult = { ok: true; plaintext: Buffer; seq?: number } | { ok: false; failure: OpenFailure }

const fail = (failure: OpenFailure): OpenResult => ({ ok: false, failure })

/** Every OpenFailure, once (a Record so the compiler finds one missing): the reasons counted from 0. */
const FAILURES: Record<OpenFailure, true> = {
  malformed: true,
  oversize: true,
  unknown_kid: true,
  wrong_device: true,
  retired_kid: true,
  bad_tag: true,
  replayed: true,
  too_old: true,
  bad_signature: true,
}
export const OPEN_FAILURES = Object.keys(FAILURES) as OpenFailure[]

/** External AAD of a device's COSE_Sign1 payload: the topic, as text bytes. */
export const signedAad = (topic: string): Buffer => Buffer.from(topic, 'utf8')

/**
 * Opens what a device sent on a protected topic: verifies and decrypts with
 * the authenticated device's own keys, then checks the sequence number against
 * the device's replay window (whose new state is on disk before this
 * resolves, so the PUBACK that follows never outlives a crash).
 */
export class PayloadOpener {
  constructor(
    private readonly replay: ReplayGuard,
    private readonly maxBytes: number,
    /** Per device id, the kid it was last heard under (see ProtectionRuntime.lastKid). */
    private readonly lastKid: Map<string, string> = new Map(),
  ) {}

  async open(
    registry: DeviceRegistry,
    device: Device,
    mode: Exclude<ProtectionMode, 'none'>,
    bytes: Buffer,
    topic: string,
  ): Promise<OpenResult> {
    if (bytes.length > this.maxBytes) return fail('oversize')
    if (mode === 'signed') {
      if (!device.signingKey) return fail('unknown_kid')
      const result = verify1(() => device.signingKey, bytes, signedAad(topic), this.maxBytes)
      return 'failure' in result ? fail(result.failure) : { ok: true, plaintext: result.payload }
    }
    const header = mode === 'sealed' ? readHeader(bytes, this.maxBytes) : readMacHeader(bytes, this.maxBytes)
    if (typeof header === 'string') return fail(header)
    const keys = payloadKeysFor(device, header.kid)
    if (!keys) {
      if (device.payloadPrevious?.kid.equals(header.kid)) return fail('retired_kid')
      return fail(registry.byKid(header.kid.toString('hex')) ? 'wrong_device' : 'unknown_kid')
    }
    const opened =
      mode === 'sealed'
        ? open(keys.context, 'device-to-gateway', bytes, topic, this.maxBytes)
        : macOpen(keys.context, 'device-to-gateway', bytes, topic, this.maxBytes)
    if ('failure' in opened) return fail(opened.failure)
    const kidHex = keys.kid.toString('hex')
    const fresh = await this.replay.acceptIfFresh(kidHex, opened.seq)
    if (fresh !== 'ok') return fail(fresh)
    this.lastKid.set(device.id, kidHex)
    return { ok: true, plaintext: 'plaintext' in opened ? opened.plaintext : opened.payload, seq: opened.seq }
  }
}
