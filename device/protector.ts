import { deriveContext } from '../crypto/context.js'
import { seal } from '../crypto/encrypt0.js'
import { type HpkeSealRecipient, hpkeSeal } from '../crypto/hpke.js'
import { macProtect } from '../crypto/mac0.js'
import { makeToken } from '../crypto/token.js'
import type { DerivedContext, MasterSecretConfig } from '../crypto/types.js'
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

  constructor(
    config: MasterSecretConfig,
    private readonly counter: SequenceCounter,
  ) {
    this.ctx = deriveContext(config)
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
