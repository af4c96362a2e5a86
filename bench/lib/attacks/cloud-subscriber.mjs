/**
 * The cloud side of the attack bench, a child process: one mutual-TLS MQTT
 * 3.1.1 session to the cloud mosquitto on `gateways/#` at QoS 1, counting every
 * message by device and sequence number. A gateway message is a signed
 * envelope (bench/lib/envelope.mjs) whose body is the device payload, stamped
 * (bench/lib/payload.mjs) with the device's index and its own counter. The
 * envelope's device id must be the device the stamp names, or the message is
 * counted as foreign. Nothing is verified cryptographically: this bench counts.
 *
 * IPC: init { endpoint, devices: { id: index }, maxPerDevice: [n per index] }
 *   -> ready; progress -> { perDevice, received, duplicates, foreign, bytes }; result -> + bits.
 */
import { bitsToBase64, createBits, setBit } from '../bitset.mjs'
import { send, serveParent } from '../child.mjs'
import { openSocket } from '../connect.mjs'
import { readEnvelope } from '../envelope.mjs'
import { CONNACK, connectPacket, PUBLISH, parsePublish, SUBACK, subscribePacket } from '../mqtt-wire.mjs'
import { readStamp } from '../payload.mjs'
import { StreamParser } from './wire.mjs'

let socket
let bits = []
let perDevice = []
const idByIndex = new Map()
const counts = { received: 0, duplicates: 0, foreign: 0, bytes: 0, largest: 0 }
let acks = []

function onPublish(flags, body) {
  const { qos, packetId, payload } = parsePublish(flags, body)
  if (qos > 0) acks.push(packetId)
  counts.bytes += payload.length
  if (payload.length > counts.largest) counts.largest = payload.length
  const envelope = readEnvelope(payload)
  const stamp = envelope !== null && envelope.protection === 0 ? readStamp(envelope.body) : null
  const id = stamp === null ? undefined : idByIndex.get(stamp.publisher)
  if (id === undefined || envelope.deviceId === null || envelope.deviceId.toString('utf8') !== id) {
    counts.foreign++
    return
  }
  if (!setBit(bits[stamp.publisher], stamp.counter)) {
    counts.duplicates++
    return
  }
  counts.received++
  perDevice[stamp.publisher]++
}

function flushAcks() {
  if (acks.length === 0) return
  const out = Buffer.allocUnsafe(4 * acks.length)
  for (let i = 0; i < acks.length; i++) {
    out[4 * i] = 0x40
    out[4 * i + 1] = 2
    out.writeUInt16BE(acks[i], 4 * i + 2)
  }
  acks = []
  socket.write(out)
}

serveParent(
  {
    async init({ config }) {
      for (const [id, index] of Object.entries(config.devices)) idByIndex.set(index, id)
      bits = config.maxPerDevice.map((n) => createBits(n))
      perDevice = config.maxPerDevice.map(() => 0)
      socket = await openSocket(config.endpoint)
      let handler = null
      const parser = new StreamParser((type, flags, body) => handler?.(type, flags, body))
      socket.on('data', (chunk) => {
        parser.push(chunk)
        flushAcks()
      })
      socket.on('error', () => undefined)
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no CONNACK/SUBACK from the cloud')), 10_000)
        handler = (type, _flags, body) => {
          if (type === CONNACK && body[1] !== 0) reject(new Error(`cloud CONNACK code ${body[1]}`))
          if (type === SUBACK) {
            clearTimeout(timer)
            if (body[2] !== 1) reject(new Error(`Expected SUBACK granting QoS 1, got ${body[2]}`))
            else resolve()
          }
        }
        socket.write(connectPacket({ clientId: 'attack-bench-subscriber', keepalive: 60 }))
        socket.write(subscribePacket(1, 'gateways/#', 1))
      })
      handler = (type, flags, body) => {
        if (type === PUBLISH) onPublish(flags, body)
      }
      socket.once('close', () => send({ type: 'error', message: 'the subscriber lost its cloud connection' }))
      setInterval(() => socket.write(Buffer.from([0xc0, 0])), 30_000).unref()
      send({ type: 'ready' })
    },
    progress() {
      send({ type: 'progress', perDevice: [...perDevice], ...counts })
    },
    result() {
      send({ type: 'result', perDevice: [...perDevice], ...counts, bits: bits.map(bitsToBase64) })
    },
    exit() {
      socket?.end()
      setTimeout(() => process.exit(0), 50)
    },
  },
  { maxLifeMs: 90 * 60_000 },
)
