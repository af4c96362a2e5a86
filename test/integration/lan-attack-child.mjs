/**
 * The LAN attacks of issue 13 items 1 and 3, run by lan-limits.test.ts in a
 * process of its own (so the attacker's memory is not counted as the
 * gateway's), until it is sent SIGTERM:
 *
 *   node lan-attack-child.mjs <tcp port> <tls-psk port> <PSK identity> <PSK hex>
 *
 * Every round: 50 idle TCP connections on each port (held until the gateway
 * closes them), a TLS handshake dribbled a byte at a time, 4 CONNECTs
 * announcing 256 MB followed by 1 MB each, and a device that logs in with its
 * PSK and announces a 50 MB PUBLISH followed by 1 MB (the gateway closes each
 * on its header: sending more costs only the attacker). Prints one line with
 * the rounds on exit.
 */
import { connect } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import mqttPacket from 'mqtt-packet'

const [tcpPort, pskPort, identity, pskHex] = process.argv.slice(2)
const MB = 1024 * 1024
const chunk = Buffer.alloc(MB, 0x41)
let rounds = 0
let stopping = false

function open(port) {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port: Number(port) })
    socket.on('error', () => undefined)
    socket.once('connect', () => resolve(socket))
    socket.once('close', () => resolve(socket))
  })
}

/** Writes `header`, then up to `total` bytes, until the gateway closes the socket. */
async function flood(socket, header, total) {
  socket.write(header)
  let written = 0
  while (written < total && !socket.destroyed) {
    written += chunk.length
    if (!socket.write(chunk) && !socket.destroyed) {
      await new Promise((resolve) => {
        socket.once('drain', resolve)
        socket.once('close', resolve)
      })
    }
  }
  socket.destroy()
}

/** A TLS-PSK connection of the attacking device, after its CONNACK. */
async function loggedIn() {
  const socket = await new Promise((resolve) => {
    const s = tlsConnect({
      host: '127.0.0.1',
      port: Number(pskPort),
      ciphers: 'PSK-AES128-GCM-SHA256',
      maxVersion: 'TLSv1.2',
      checkServerIdentity: () => undefined,
      pskCallback: () => ({ identity, psk: Buffer.from(pskHex, 'hex') }),
    })
    s.on('error', () => undefined)
    s.once('secureConnect', () => resolve(s))
    s.once('close', () => resolve(s))
  })
  socket.write(
    mqttPacket.generate({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clientId: identity,
      clean: true,
      keepalive: 60,
    }),
  )
  if (!socket.destroyed) {
    await new Promise((resolve) => {
      socket.once('data', resolve)
      socket.once('close', resolve)
    })
  }
  return socket
}

async function round() {
  await Promise.all([
    ...Array.from({ length: 50 }, () => open(pskPort)),
    ...Array.from({ length: 50 }, () => open(tcpPort)),
  ])
  const drip = await open(pskPort)
  drip.write(Buffer.from([0x16, 0x03, 0x01, 0x40, 0x00, 0x01]))
  const dripping = setInterval(() => drip.destroyed || drip.write(Buffer.from([0])), 100)
  drip.once('close', () => clearInterval(dripping))
  const connectHeader = Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f])
  await Promise.all(Array.from({ length: 4 }, async () => flood(await open(tcpPort), connectHeader, MB)))
  const topic = Buffer.from(`devices/${identity}/big`)
  const publishHeader = Buffer.concat([
    Buffer.from([0x32, 0x98, 0x80, 0x80, 0x19]), // QoS 1 PUBLISH, remaining length 50 MiB + 24
    Buffer.from([0, topic.length]),
    topic,
    Buffer.from([0, 1]),
  ])
  await flood(await loggedIn(), publishHeader, MB)
  rounds++
}

process.on('SIGTERM', () => {
  stopping = true
})
while (!stopping) {
  await round()
  await new Promise((r) => setTimeout(r, 200))
}
process.stdout.write(`${JSON.stringify({ rounds })}\n`)
process.exit(0)
