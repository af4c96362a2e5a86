import type { Duplex } from 'node:stream'
import type { Client, ConnectPacket } from 'aedes'
import type { Principal } from '../policies/types.js'
import type { Device } from './registry.js'

/** What the listener learned about a connection before MQTT started: where it came from and how it proved itself. */
export interface TransportContext {
  listener: string
  remoteAddress: string
  /** The PSK identity that completed the TLS handshake, when the listener is TLS-PSK. */
  pskIdentity?: string
  /** The subject common name of the verified client certificate, on a `tls` listener. */
  certificateCommonName?: string
}

/** What the CONNECT packet said that aedes does not keep: needed by authentication. */
export interface ConnectFacts {
  emptyClientId: boolean
  clean: boolean
  will?: ConnectPacket['will']
}

/** What authentication decided: the device behind a client. */
export interface DeviceSession {
  device: Device
  transport: TransportContext
  principal: Principal
}

const transports = new WeakMap<object, TransportContext>()
const connects = new WeakMap<Client, ConnectFacts>()
const sessions = new WeakMap<Client, DeviceSession>()

export function setTransport(stream: Duplex, context: TransportContext): void {
  transports.set(stream, context)
}

export function transportOf(client: Client): TransportContext {
  return transports.get(client.conn) ?? { listener: 'unknown', remoteAddress: 'unknown' }
}

export function setConnectFacts(client: Client, facts: ConnectFacts): void {
  connects.set(client, facts)
}

export function connectFactsOf(client: Client): ConnectFacts | undefined {
  return connects.get(client)
}

export function setSession(client: Client, session: DeviceSession): void {
  sessions.set(client, session)
}

export function sessionOf(client: Client | null | undefined): DeviceSession | undefined {
  return client ? sessions.get(client) : undefined
}

export function principalFor(device: Device, clientId: string, username: string | undefined): Principal {
  return {
    deviceId: device.id,
    clientId,
    groups: device.groups,
    ...(username !== undefined && { username }),
  }
}
