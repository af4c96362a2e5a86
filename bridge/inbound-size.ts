import type { Duplex, Readable } from 'node:stream'
import type { MqttClient } from 'mqtt'
import {
  type FixedHeader,
  HEADER_INCOMPLETE,
  HEADER_MALFORMED,
  readFixedHeader,
} from '../core/mqtt-fixed-header.js'
import { MAX_COMMAND_BYTES, MAX_ENVELOPE_BYTES } from './envelope.js'

/**
 * Largest MQTT packet, fixed header included, the gateway takes from the cloud broker: a downlink or
 * rotation command (at most MAX_COMMAND_BYTES, bridge/envelope.ts) with its topic and properties.
 * Advertised as the CONNECT's Maximum Packet Size on MQTT 5, and enforced on both versions by
 * `watchPacketSizes`.
 */
export const MAX_CLOUD_PACKET_BYTES = MAX_COMMAND_BYTES + 64 * 1024

/**
 * Largest MQTT packet the cloud-side tools (`edge-gateway cloud consume`, `cloud group`, `cloud
 * rotate`) take from the broker: an envelope (at most MAX_ENVELOPE_BYTES) with its topic and
 * properties.
 */
export const MAX_CLOUD_TOOL_PACKET_BYTES = MAX_ENVELOPE_BYTES + 64 * 1024

/**
 * Holds an mqtt.js client to `maxPacketBytes` on every connection it makes (its first, and each one
 * it reconnects with): a packet announced larger makes `onOversize` run, then closes that connection.
 * On MQTT 5, pass the same figure as the CONNECT's `properties.maximumPacketSize` too.
 */
export function limitInboundPackets(
  client: MqttClient,
  maxPacketBytes: number,
  onOversize: (packetBytes: number) => void,
): void {
  const watch = (stream: Duplex) =>
    watchPacketSizes(
      stream,
      maxPacketBytes,
      (bytes) => {
        onOversize(bytes)
        stream.destroy()
      },
      () => stream.destroy(),
    )
  // mqtt.js reports a packet its parser refuses as an 'error' and reads on, its parser starting
  // afresh at the next chunk, where this watcher may not be at a packet's start: a broker could slip
  // an oversize packet past the watch that way. MQTT says to close the connection on a malformed
  // packet (MQTT-4.8.0-1), and so does any other error the client reports: the connection is closed.
  client.on('error', () => client.stream?.destroy())
  // mqtt.js makes each connection's stream with its `streamBuilder` (declared private in its types).
  const internals = client as unknown as { streamBuilder: (c: MqttClient) => Duplex; stream: Duplex }
  const build = internals.streamBuilder
  internals.streamBuilder = (c) => {
    const stream = build.call(client, c)
    watch(stream)
    return stream
  }
  watch(internals.stream)
}

/**
 * Watches the packets a stream carries, by their fixed headers alone, and calls `onOversize` (once,
 * then stops watching) when one announces more than `maxPacketBytes`: as soon as its at most 5
 * header bytes have arrived, before its body is buffered. mqtt.js's parser would otherwise buffer
 * whatever remaining length a packet announces (up to 256 MiB) before any check could see it; the
 * caller closes the connection. A remaining length of more than 4 bytes calls `onMalformed` (once,
 * then stops watching): past it, no packet boundary can be known.
 *
 * Cost: a loop over the fixed headers of each chunk; no copy, except an incomplete header (at most
 * 4 bytes) carried to the next chunk, with that chunk.
 */
export function watchPacketSizes(
  stream: Readable,
  maxPacketBytes: number,
  onOversize: (packetBytes: number) => void,
  onMalformed: () => void = () => undefined,
): void {
  const header: FixedHeader = { type: 0, flags: 0, remaining: 0, headerBytes: 0 }
  /** Bytes of the current packet not seen yet. */
  let skip = 0
  /** The start of a fixed header that the last chunk cut off. */
  let carry: Buffer | null = null
  const onData = (chunk: Buffer): void => {
    let buf = chunk
    if (carry !== null) {
      buf = Buffer.concat([carry, chunk])
      carry = null
    }
    let offset = 0
    while (offset < buf.length) {
      if (skip > 0) {
        const take = Math.min(skip, buf.length - offset)
        skip -= take
        offset += take
        continue
      }
      const n = readFixedHeader(buf, offset, header)
      if (n === HEADER_INCOMPLETE) {
        carry = Buffer.from(buf.subarray(offset))
        return
      }
      if (n === HEADER_MALFORMED) {
        stream.off('data', onData)
        onMalformed()
        return
      }
      const total = n + header.remaining
      if (total > maxPacketBytes) {
        stream.off('data', onData)
        onOversize(total)
        return
      }
      skip = total
    }
  }
  // Ahead of mqtt.js's own listener, which still gets the chunk that carried the header (one chunk:
  // bounded); the caller's close stops the rest.
  stream.prependListener('data', onData)
}
