import { createHmac, createSecretKey, type KeyObject, randomBytes, timingSafeEqual } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import type { Device, DeviceRegistry } from '../registry.js'
import { verifyAgainstDummy } from './password.js'

interface Entry {
  /** The fingerprint of the hash the password was verified against. */
  fingerprint: string
  /** HMAC-SHA256(key, device id, password). */
  mac: Buffer
}

/**
 * Remembers, per device, the last password that passed its hash, so a device
 * that reconnects with it skips scrypt (a Wi-Fi outage sends every device back
 * at once). What is kept is HMAC-SHA256 under a key made at start and held
 * only in memory: nothing is written anywhere, and a restart forgets it all.
 *
 * - Only a verified password is stored, under its device's id: a wrong
 *   password, an unknown username or a spray of them never adds, evicts or
 *   replaces an entry; at most `maxEntries` devices (least recently verified
 *   forgotten first).
 * - An entry counts only while the device's hash is the one it was verified
 *   against (its fingerprint): a reload that changes the hash forgets it
 *   (`retain`), and a lookup checks it again.
 * - A hit is compared in constant time; a miss runs the hash as before.
 *
 * The trade-off (docs/security.md): someone who can read the gateway's memory
 * gets a fast test for the passwords of recently connected devices; they
 * would also see those passwords arrive in CONNECTs.
 */
export class VerifiedPasswords {
  readonly #key: KeyObject = createSecretKey(randomBytes(32))
  readonly #entries: LRUCache<string, Entry> | undefined

  constructor(maxEntries: number) {
    if (!Number.isInteger(maxEntries) || maxEntries < 0)
      throw new Error(`Expected maxEntries to be an integer of 0 or more, got ${maxEntries}`)
    this.#entries = maxEntries > 0 ? new LRUCache<string, Entry>({ max: maxEntries }) : undefined
  }

  /** Devices remembered. */
  get size(): number {
    return this.#entries?.size ?? 0
  }

  #mac(deviceId: string, password: Buffer): Buffer {
    const id = Buffer.from(deviceId, 'utf8')
    const length = Buffer.alloc(4)
    length.writeUInt32BE(id.length)
    return createHmac('sha256', this.#key).update(length).update(id).update(password).digest()
  }

  /** Whether `password` is the device's: from memory when it was verified against the same hash, else its hash. */
  async check(device: Device, password: Buffer, wanted?: () => boolean): Promise<boolean> {
    if (!device.password) return verifyAgainstDummy(password, wanted)
    const fingerprint = device.passwordFingerprint
    if (!this.#entries || fingerprint === undefined) return device.password(password, wanted)
    const mac = this.#mac(device.id, password)
    const entry = this.#entries.get(device.id)
    if (entry && entry.fingerprint === fingerprint && timingSafeEqual(entry.mac, mac)) return true
    const ok = await device.password(password, wanted)
    if (ok) this.#entries.set(device.id, { fingerprint, mac })
    return ok
  }

  /** Forgets the devices a new registry no longer has, or has with another hash. */
  retain(registry: DeviceRegistry): void {
    if (!this.#entries) return
    const stale = [...this.#entries.entries()]
      .filter(([id, entry]) => registry.byDeviceId(id)?.passwordFingerprint !== entry.fingerprint)
      .map(([id]) => id)
    for (const id of stale) this.#entries.delete(id)
  }
}
