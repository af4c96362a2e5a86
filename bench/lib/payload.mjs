/**
 * The bench payload: an 18-byte stamp, then filler up to the payload size.
 *   [0] 0xb7  [1] version 1  [2..3] trial  [4..5] publisher  [6..9] counter
 *   [10..17] send time, µs of the monotonic clock (float64)
 * The monotonic clock (process.hrtime) is one clock for every process on the
 * machine, so a subscriber in another process can subtract it.
 */

export const STAMP_BYTES = 18
const MAGIC = 0xb7
const VERSION = 1
/** Trial number of the readiness probes (never a real trial). */
export const PROBE_TRIAL = 0xffff

export function nowMicros() {
  const [s, ns] = process.hrtime()
  return s * 1e6 + ns / 1e3
}

export function writeStamp(buf, at, trial, publisher, counter, micros) {
  buf[at] = MAGIC
  buf[at + 1] = VERSION
  buf.writeUInt16BE(trial, at + 2)
  buf.writeUInt16BE(publisher, at + 4)
  buf.writeUInt32BE(counter, at + 6)
  buf.writeDoubleBE(micros, at + 10)
}

/** The stamp of a received payload, or null if it is not one of ours. */
export function readStamp(payload) {
  if (payload.length < STAMP_BYTES || payload[0] !== MAGIC || payload[1] !== VERSION) return null
  return {
    trial: payload.readUInt16BE(2),
    publisher: payload.readUInt16BE(4),
    counter: payload.readUInt32BE(6),
    micros: payload.readDoubleBE(10),
  }
}

/** Filler after the stamp (printable, compressible: neither system compresses). */
export function filler(payloadSize) {
  if (payloadSize < STAMP_BYTES)
    throw new Error(`Expected a payload of at least ${STAMP_BYTES} bytes, got ${payloadSize}`)
  return Buffer.alloc(payloadSize - STAMP_BYTES, 0x78)
}

/** A payload with a fresh stamp (for probes and sealing). */
export function stampedPayload(payloadSize, trial, publisher, counter) {
  const buf = Buffer.allocUnsafe(payloadSize)
  writeStamp(buf, 0, trial, publisher, counter, nowMicros())
  filler(payloadSize).copy(buf, STAMP_BYTES)
  return buf
}
