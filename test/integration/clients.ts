import { connect as netConnect, type Socket } from 'node:net'
import { type TLSSocket, connect as tlsConnect } from 'node:tls'
import mqtt, { type ErrorWithReasonCode, type MqttClient } from 'mqtt'
import mqttPacket from 'mqtt-packet'

/** Connects an mqtt.js client without retrying; rejects with the CONNACK code on refusal. */
export function connectDevice(port: number, options: mqtt.IClientOptions): Promise<MqttClient> {
  return mqtt.connectAsync({ host: '127.0.0.1', port, reconnectPeriod: 0, connectTimeout: 5000, ...options })
}

/** Resolves with the CONNACK return code (0 when accepted; the client is then closed). */
export async function connackCode(port: number, options: mqtt.IClientOptions): Promise<number> {
  try {
    const client = await connectDevice(port, options)
    await client.endAsync()
    return 0
  } catch (err) {
    const code = (err as ErrorWithReasonCode).code
    if (typeof code === 'number') return code
    throw err
  }
}

/**
 * Publishes at QoS 1 (or 0) and tells what the broker did: 'acked' (PUBACK, or
 * for QoS 0 the connection still open after a PINGREQ round trip) or 'closed'.
 */
export function publishOutcome(
  client: MqttClient,
  topic: string,
  payload: string | Buffer,
  options: { qos?: 0 | 1; retain?: boolean } = {},
): Promise<'acked' | 'closed'> {
  const qos = options.qos ?? 1
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no PUBACK and no close within 5 s for ${topic}`)), 5000)
    const onClose = () => {
      clearTimeout(timer)
      resolve('closed')
    }
    client.once('close', onClose)
    client.publish(topic, payload, { qos, retain: options.retain ?? false }, (err) => {
      if (err) return
      if (qos === 1) {
        clearTimeout(timer)
        client.off('close', onClose)
        resolve('acked')
      }
    })
    if (qos === 0) {
      // A PINGRESP after the PUBLISH proves the broker read it and kept the connection.
      client.once('packetreceive', (packet) => {
        if (packet.cmd === 'pingresp') {
          clearTimeout(timer)
          client.off('close', onClose)
          resolve('acked')
        }
      })
      ;(client as unknown as { _sendPacket(p: object): void })._sendPacket({ cmd: 'pingreq' })
    }
  })
}

/** SUBSCRIBE and return the granted QoS per filter (128 = refused). */
export function subscribeGranted(
  client: MqttClient,
  filters: Record<string, { qos: 0 | 1 | 2 }>,
): Promise<number[]> {
  return new Promise((resolve, reject) => {
    client.subscribe(filters, (err, granted) => {
      // mqtt.js reports a SUBACK with a 0x80 as an error; the SUBACK itself is what the test wants.
      const suback = (err as { packet?: { granted?: number[] } } | null)?.packet
      if (suback?.granted) return resolve(suback.granted.map((g) => Number(g)))
      if (err) return reject(err)
      resolve((granted ?? []).map((g) => g.qos))
    })
  })
}

/** Collects messages a client receives, by topic. */
export function collect(client: MqttClient): Array<{ topic: string; payload: string; retain: boolean }> {
  const got: Array<{ topic: string; payload: string; retain: boolean }> = []
  client.on('message', (topic, payload, packet) =>
    got.push({ topic, payload: payload.toString(), retain: packet.retain }),
  )
  return got
}

/**
 * Sends one raw CONNECT (for what mqtt.js refuses to send, like an empty client
 * id with a persistent session) and resolves with the CONNACK return code.
 */
export function rawConnack(
  port: number,
  connect: Partial<mqttPacket.IConnectPacket>,
  localAddress?: string,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port, ...(localAddress && { localAddress }) })
    const parser = mqttPacket.parser({ protocolVersion: 4 })
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error('no CONNACK within 5 s'))
    }, 5000)
    parser.on('packet', (packet) => {
      if (packet.cmd === 'connack') {
        clearTimeout(timer)
        socket.destroy()
        resolve((packet as mqttPacket.IConnackPacket).returnCode ?? -1)
      }
    })
    socket.on('data', (chunk) => parser.parse(chunk))
    socket.on('error', reject)
    const clean = connect.clean ?? true
    const bytes = mqttPacket.generate({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clientId: '',
      keepalive: 30,
      ...connect,
      // mqtt-packet will not generate an empty client id with CleanSession=0: build it clean, then clear the flag.
      clean: true,
    } as mqttPacket.IConnectPacket)
    if (!clean) {
      // Fixed header (1) + remaining length (1 while < 128) + "MQTT" (2 + 4) + level (1): the flags byte.
      if (bytes.length - 2 >= 128) throw new Error('raw CONNECT too long for the flag patch')
      bytes[9] = bytes[9]! & ~0x02
    }
    socket.write(bytes)
  })
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * A CONNECT over TLS-PSK (TLS 1.2 or 1.3) from `localAddress`, without credentials: resolves with
 * the CONNACK code and the socket, left open (the caller closes it), or with 'closed' when the
 * connection ended first (a failed handshake, or closed on accept); rejects after 5 s without either.
 */
export function pskConnack(
  port: number,
  psk: { identity: string; key: Buffer },
  clientId: string,
  localAddress: string,
): Promise<{ code: number | 'closed'; socket: TLSSocket }> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      socket: netConnect({ host: '127.0.0.1', port, localAddress }),
      ciphers: 'PSK-AES128-GCM-SHA256:TLS_AES_128_GCM_SHA256',
      pskCallback: () => ({ identity: psk.identity, psk: psk.key }),
      checkServerIdentity: () => undefined,
    })
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error('no CONNACK within 5 s'))
    }, 5000)
    const done = (code: number | 'closed') => {
      clearTimeout(timer)
      resolve({ code, socket })
    }
    const parser = mqttPacket.parser({ protocolVersion: 4 })
    parser.on('packet', (packet) => {
      if (packet.cmd === 'connack') done((packet as mqttPacket.IConnackPacket).returnCode ?? -1)
    })
    socket.on('data', (chunk: Buffer) => parser.parse(chunk))
    socket.on('error', () => undefined)
    socket.once('close', () => done('closed'))
    socket.once('secureConnect', () =>
      socket.write(
        mqttPacket.generate({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 4,
          clientId,
          clean: true,
          keepalive: 30,
        }),
      ),
    )
  })
}

/**
 * A client over raw TCP (no MQTT library between the test and the wire): CONNECT with a username
 * and password, resolved once its CONNACK came (rejects after 5 s). `seen` lists the packet types
 * received, as they come; `closed()` says whether the connection has closed.
 */
export async function rawClient(
  port: number,
  options: { clientId: string; username: string; password: string; clean: boolean },
): Promise<{ socket: Socket; seen: string[]; closed: () => boolean }> {
  const socket = netConnect({ host: '127.0.0.1', port })
  const parser = mqttPacket.parser({ protocolVersion: 4 })
  const seen: string[] = []
  let closed = false
  socket.on('error', () => undefined)
  socket.once('close', () => {
    closed = true
  })
  const connack = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no CONNACK within 5 s')), 5000)
    parser.on('packet', (p) => {
      seen.push(p.cmd)
      if (p.cmd === 'connack') {
        clearTimeout(timer)
        resolve()
      }
    })
  })
  socket.on('data', (chunk: Buffer) => parser.parse(chunk))
  await new Promise((r) => socket.once('connect', r))
  socket.write(
    mqttPacket.generate({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clientId: options.clientId,
      clean: options.clean,
      keepalive: 0,
      username: options.username,
      password: Buffer.from(options.password),
    }),
  )
  await connack
  return { socket, seen, closed: () => closed }
}
