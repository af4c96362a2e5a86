import { readFile } from 'node:fs/promises'
import { createServer, type TLSSocket } from 'node:tls'
import { Aedes, type AedesPublishPacket } from 'aedes'

export interface LabCloudBroker {
  port: number
  close(): Promise<void>
}

/**
 * The lab's stand-in for a cloud broker: aedes behind a TLS server that demands
 * a client certificate signed by the lab CA (MQTT 3.1.1; a real cloud runs
 * mosquitto, EMQX or HiveMQ). Every message a client publishes is passed to
 * `onMessage`.
 */
export async function startLabCloudBroker(options: {
  host: string
  port: number
  caFile: string
  certFile: string
  keyFile: string
  onMessage: (packet: AedesPublishPacket, clientId: string) => void
  onRefused: (reason: string) => void
}): Promise<LabCloudBroker> {
  const broker = await Aedes.createBroker({ id: 'lab-cloud' })
  broker.on('publish', (packet, client) => {
    if (client) options.onMessage(packet, client.id)
  })
  const server = createServer({
    ca: await readFile(options.caFile),
    cert: await readFile(options.certFile),
    key: await readFile(options.keyFile),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
  })
  server.on('secureConnection', (socket: TLSSocket) => broker.handle(socket))
  server.on('tlsClientError', (err) => options.onRefused(err.message))
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host: options.host, port: options.port }, () => {
      const address = server.address()
      resolve(typeof address === 'object' && address ? address.port : options.port)
    })
  })
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close()
        broker.close(() => resolve())
      }),
  }
}
