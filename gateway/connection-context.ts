import type { Duplex } from 'node:stream'
import type { Client } from 'aedes'
import type { Device } from './registry.js'

/** What the listener learned about a connection before MQTT started: where it came from and how it proved itself. */
export interface TransportContext {
  listener: string
  remoteAddress: string
  /** The PSK identity that completed the TLS handshake, when the listener is TLS-PSK. */
  pskIdentity?: string
}

/** What authentication decided: the device behind a client. */
export interface DeviceSession {
  device: Device
  transport: TransportContext
  topicPrefix: string
}

const transports = new WeakMap<object, TransportContext>()
const sessions = new WeakMap<Client, DeviceSession>()

export function setTransport(stream: Duplex, context: TransportContext): void {
  transports.set(stream, context)
}

export function transportOf(client: Client): TransportContext {
  return (
    transports.get(client.conn) ?? {
      listener: 'unknown',
      remoteAddress: 'unknown',
    }
  )
}

export function setSession(client: Client, session: DeviceSession): void {
  sessions.set(client, session)
}

export function sessionOf(client: Client | null | undefined): DeviceSession | undefined {
  return client ? sessions.get(client) : undefined
}
