import mqtt, { type MqttClient } from 'mqtt'

export interface SimulatedDevice {
  id: string
  stop(): Promise<void>
}

interface DeviceTransport {
  kind: 'psk' | 'password'
  host: string
  port: number
  psk?: { identity: string; key: Buffer }
  username?: string
  password?: string
}

/**
 * A device that publishes a small telemetry reading at QoS 1 every `intervalMs`,
 * as a constrained sensor would: over TLS-PSK, or over plain TCP with a password.
 */
export function startSimulatedDevice(
  id: string,
  transport: DeviceTransport,
  intervalMs: number,
  onError: (id: string, err: Error) => void,
): SimulatedDevice {
  const common = { clientId: id, clean: true, keepalive: 30, reconnectPeriod: 1000, connectTimeout: 5000 }
  let client: MqttClient
  if (transport.kind === 'psk' && transport.psk) {
    const { identity, key } = transport.psk
    client = mqtt.connect({
      ...common,
      protocol: 'mqtts',
      host: transport.host,
      port: transport.port,
      ciphers: 'PSK-AES128-GCM-SHA256:TLS_AES_128_GCM_SHA256',
      pskCallback: () => ({ identity, psk: key }),
      // The PSK authenticates the server; there is no certificate to check.
      checkServerIdentity: () => undefined,
    } as mqtt.IClientOptions)
  } else {
    client = mqtt.connect({
      ...common,
      protocol: 'mqtt',
      host: transport.host,
      port: transport.port,
      ...(transport.username !== undefined && { username: transport.username }),
      ...(transport.password !== undefined && { password: transport.password }),
    })
  }
  client.on('error', (err) => onError(id, err))
  let reading = 0
  const timer = setInterval(() => {
    if (!client.connected) return
    reading++
    const payload = JSON.stringify({
      n: reading,
      t: Date.now(),
      temp: +(20 + Math.sin(reading / 5) * 3).toFixed(2),
    })
    client.publish(`devices/${id}/telemetry`, payload, { qos: 1 })
  }, intervalMs)
  return {
    id,
    async stop() {
      clearInterval(timer)
      await client.endAsync()
    },
  }
}
