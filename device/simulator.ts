import { join } from 'node:path'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { hpkeSeal } from '../crypto/hpke.js'
import type { MasterSecretConfig } from '../crypto/types.js'
import { DeviceProtector } from './protector.js'

export type SimulatorMode = 'psk' | 'password' | 'token' | 'sealed' | 'mac' | 'hpke'

export interface SimulatedDeviceSpec {
  id: string
  clientId?: string
  username?: string
  password?: string
  psk?: { identity: string; key: Buffer }
  payloadKey?: MasterSecretConfig
}

export interface SimulatorOptions {
  mode: SimulatorMode
  host: string
  /** The plain TCP listener (password, token, sealed, mac, hpke) or the TLS-PSK one (psk). */
  port: number
  devices: ReadonlyArray<SimulatedDeviceSpec>
  messages: number
  intervalMs: number
  /** `%d` is replaced by the device id. */
  topic: string
  /** Where devices keep their sequence numbers. */
  stateDir: string
  hpkeRecipient?: { kid: Buffer; publicKey: Buffer }
}

export interface SimulatorResult {
  device: string
  sent: number
  acknowledged: number
  error?: string
}

function connectOptions(
  mode: SimulatorMode,
  device: SimulatedDeviceSpec,
  protector?: DeviceProtector,
): IClientOptions {
  const clientId = device.clientId ?? device.id
  const base: IClientOptions = { clientId, reconnectPeriod: 0, connectTimeout: 10_000, keepalive: 60 }
  if (mode === 'psk') {
    if (!device.psk) throw new Error(`device ${device.id} has no PSK for --mode psk`)
    const psk = device.psk
    return {
      ...base,
      protocol: 'mqtts',
      ciphers: 'PSK-AES128-GCM-SHA256:TLS_AES_128_GCM_SHA256',
      pskCallback: () => ({ identity: psk.identity, psk: psk.key }),
      checkServerIdentity: () => undefined,
    } as IClientOptions
  }
  const username = device.username ?? device.id
  if (mode === 'password' || (device.password !== undefined && !protector)) {
    if (device.password === undefined)
      throw new Error(`device ${device.id} needs --password for --mode ${mode}`)
    return { ...base, username, password: device.password }
  }
  if (!protector) throw new Error(`device ${device.id} has no payload key for --mode ${mode}`)
  // No clear-text password crosses the LAN: a one-time token in the password field.
  return { ...base, username, password: protector.token(clientId) }
}

/**
 * Runs simulated devices against a gateway in one LAN mode: each connects,
 * publishes `messages` readings at QoS 1 (sealed, MAC'd or HPKE-sealed as the
 * mode says), and disconnects. Bounded in count; returns what each device saw.
 */
export async function simulate(options: SimulatorOptions): Promise<SimulatorResult[]> {
  return Promise.all(
    options.devices.map(async (device): Promise<SimulatorResult> => {
      const result: SimulatorResult = { device: device.id, sent: 0, acknowledged: 0 }
      let client: MqttClient | undefined
      try {
        const protector =
          device.payloadKey && options.mode !== 'psk' && options.mode !== 'password'
            ? await DeviceProtector.open(device.payloadKey, join(options.stateDir, `${device.id}.seq`))
            : undefined
        client = await mqtt.connectAsync({
          host: options.host,
          port: options.port,
          ...connectOptions(options.mode, device, protector),
        })
        const topic = options.topic.replaceAll('%d', device.id)
        for (let i = 1; i <= options.messages; i++) {
          const reading = Buffer.from(
            JSON.stringify({ n: i, t: Date.now(), temp: +(20 + Math.sin(i / 5) * 3).toFixed(2) }),
          )
          let payload: Buffer = reading
          if (options.mode === 'sealed') payload = await protector!.seal(topic, reading)
          else if (options.mode === 'mac') payload = await protector!.mac(topic, reading)
          else if (options.mode === 'hpke') {
            if (!options.hpkeRecipient) throw new Error('--mode hpke needs a recipient public key')
            payload = await hpkeSeal(options.hpkeRecipient, reading, topic)
          }
          result.sent++
          await client.publishAsync(topic, payload, { qos: 1 })
          result.acknowledged++
          if (i < options.messages) await new Promise((r) => setTimeout(r, options.intervalMs))
        }
      } catch (err) {
        result.error = (err as Error).message
      } finally {
        await client?.endAsync().catch(() => undefined)
      }
      return result
    }),
  )
}
