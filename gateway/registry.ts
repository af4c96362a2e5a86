import { readFile } from 'node:fs/promises'
import type { DeviceConfig } from '../config/index.js'
import { parsePasswordHash } from './auth/password.js'
import { compileClientIdPatterns } from './client-id.js'
import { GatewayError } from './errors.js'

export interface Device {
  readonly id: string
  readonly username?: string
  readonly passwordHash?: ReturnType<typeof parsePasswordHash>
  readonly pskIdentity?: string
  readonly clientIdAllowed: (clientId: string) => boolean
}

const MAX_PSK_FILE_BYTES = 1024

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
 * logged without thought.
 */
export class DeviceRegistry {
  private readonly byId = new Map<string, Device>()
  private readonly byUsername = new Map<string, Device>()
  private readonly byPskIdentity = new Map<string, Device>()
  private readonly pskKeys = new Map<string, Buffer>()

  static async fromConfig(devices: ReadonlyArray<DeviceConfig>): Promise<DeviceRegistry> {
    const registry = new DeviceRegistry()
    for (const d of devices) {
      const key = d.psk ? await readPskFile(d.psk.keyFile) : undefined
      registry.add(d, key)
    }
    return registry
  }

  add(config: DeviceConfig, pskKey?: Buffer): void {
    const device: Device = {
      id: config.id,
      ...(config.username !== undefined && { username: config.username }),
      ...(config.passwordHash !== undefined && { passwordHash: parsePasswordHash(config.passwordHash) }),
      ...(config.psk && { pskIdentity: config.psk.identity }),
      clientIdAllowed: compileClientIdPatterns(config.clientIds ?? [config.id]),
    }
    this.byId.set(device.id, device)
    if (device.username !== undefined) this.byUsername.set(device.username, device)
    if (config.psk && pskKey) {
      this.byPskIdentity.set(config.psk.identity, device)
      this.pskKeys.set(config.psk.identity, pskKey)
    }
  }

  get size(): number {
    return this.byId.size
  }

  byDeviceId(id: string): Device | undefined {
    return this.byId.get(id)
  }

  byUser(username: string): Device | undefined {
    return this.byUsername.get(username)
  }

  byPsk(identity: string): Device | undefined {
    return this.byPskIdentity.get(identity)
  }

  /** The key for a PSK identity, for the TLS handshake only. */
  pskKey(identity: string): Buffer | undefined {
    return this.pskKeys.get(identity)
  }
}
