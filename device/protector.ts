import { deriveContext } from '../crypto/context.js'
import { open, seal } from '../crypto/encrypt0.js'
import { type HpkeSealRecipient, hpkeSeal } from '../crypto/hpke.js'
import { decodeKeyUpdate } from '../crypto/key-update.js'
import { macProtect } from '../crypto/mac0.js'
import { makeToken } from '../crypto/token.js'
import type { DerivedContext, MasterSecretConfig, OpenFailure } from '../crypto/types.js'
import { DEFAULT_BLOCK_SIZE, SequenceCounter } from './sequence.js'

/**
 * What a device (or the lab, tests, the simulator) uses to protect what it
 * publishes: payloads sealed (COSE_Encrypt0) or MACed (COSE_Mac0) under its
 * master secret, one-time CONNECT tokens, and HPKE sealing to a subscriber's
 * public key. Sealed and MACed payloads share one sequence counter, because
 * the gateway keeps one replay window per device key.
 */
export class DeviceProtector {
  private readonly ctx: DerivedContext
  /** The highest gateway sequence number opened: the gateway's numbers only rise. */
  private lastFromGateway = -1

  constructor(
    private readonly config: MasterSecretConfig,
    private readonly counter: SequenceCounter,
  ) {
    this.ctx = deriveContext(config)
  }

  /**
   * Opens what the gateway sealed for this device (COSE_Encrypt0, gateway to device) on `topic`:
   * the plaintext, or why not; a sequence number not above the last one opened is `replayed`.
   */
  openFromGateway(
    topic: string,
    bytes: Buffer,
    maxBytes = 64 * 1024,
  ): { plaintext: Buffer; seq: number } | { failure: OpenFailure } {
    const opened = open(this.ctx, 'gateway-to-device', bytes, topic, maxBytes)
    if ('failure' in opened) return opened
    if (opened.seq <= this.lastFromGateway) return { failure: 'replayed' }
    this.lastFromGateway = opened.seq
    return opened
  }

  /**
   * A key update (docs/rotation.md) received on `topic`: opened under this key, it gives the new
   * kid and master secret (to store), the protector for them (same algorithms, same sequence
   * counter), and when the gateway stops accepting this key. Undefined when the bytes are not a fresh key update sealed for this device.
   */
  acceptKeyUpdate(
    topic: string,
    bytes: Buffer,
  ): { protector: DeviceProtector; kid: Buffer; masterSecret: Buffer; until: number } | undefined {
    const opened = this.openFromGateway(topic, bytes)
    if ('failure' in opened) return undefined
    const update = decodeKeyUpdate(opened.plaintext)
    if (!update) return undefined
    const next = new DeviceProtector(
      { ...this.config, kid: update.kid, masterSecret: update.masterSecret },
      this.counter,
    )
    next.lastFromGateway = this.lastFromGateway
    // kid and masterSecret are for the device to store (as it stores its first key) before using them.
    return { protector: next, kid: update.kid, masterSecret: update.masterSecret, until: update.until }
  }

  /** A protector whose sequence counter is stored at `sequencePath`. */
  static async open(
    config: MasterSecretConfig,
    sequencePath: string,
    blockSize = DEFAULT_BLOCK_SIZE,
  ): Promise<DeviceProtector> {
    return new DeviceProtector(config, await SequenceCounter.open(sequencePath, blockSize))
  }

  /** The device's key id (OSCORE Sender ID). */
  get kid(): Buffer {
    return this.ctx.kid
  }

  /** COSE_Encrypt0 of `plaintext`, bound to `topic`, with the next sequence number. */
  async seal(topic: string, plaintext: Buffer): Promise<Buffer> {
    const seq = await this.counter.next()
    return seal(this.ctx, 'device-to-gateway', seq, plaintext, topic)
  }

  /** COSE_Mac0 of `payload` (readable, integrity only), bound to `topic`, with the next sequence number. */
  async mac(topic: string, payload: Buffer): Promise<Buffer> {
    const seq = await this.counter.next()
    return macProtect(this.ctx, 'device-to-gateway', seq, payload, topic)
  }

  /** A one-time CONNECT token (the MQTT password) for `clientId`, valid around `nowSeconds`. */
  token(clientId: string, nowSeconds: number = Math.floor(Date.now() / 1000)): Buffer {
    return makeToken(this.ctx, clientId, nowSeconds)
  }

  /**
   * HPKE-seal `plaintext` to a subscriber's public key, bound to `topic`. Uses
   * no sequence number and no device key: the recipient learns nothing about
   * the sender from it (see docs/wire-format.md, "HPKE sealing").
   */
  hpkeSeal(recipient: HpkeSealRecipient, topic: string, plaintext: Buffer): Promise<Buffer> {
    return hpkeSeal(recipient, plaintext, topic)
  }
}
