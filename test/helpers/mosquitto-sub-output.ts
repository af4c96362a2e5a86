/**
 * The `-F` format MosquittoSub passes: topic, QoS and the payload as lower-case
 * hex. Hex (not `%p`) keeps binary and multi-line payloads on one line and
 * makes each line parse unambiguously from the right, whatever the topic holds.
 */
export const SUB_FORMAT = '%t|%q|%x'

export type SubOutputLine =
  | { kind: 'message'; topic: string; qos: number; payload: Buffer }
  /** `Subscribed (mid: 1): 1, 128`: the codes granted by the SUBACK, in filter order. */
  | { kind: 'subscribed'; granted: number[] }
  /** Any other `-d` line (`Client x sending CONNECT`, ...) or noise. */
  | { kind: 'debug'; text: string }

const MESSAGE = /^(.*)\|([012])\|((?:[0-9a-f]{2})*)$/s
const SUBSCRIBED = /^Subscribed \(mid: \d+\): (\d+(?:, \d+)*)$/

/** Classifies one stdout line of `mosquitto_sub -d -F '%t|%q|%x'`. Pure. */
export function parseSubLine(line: string): SubOutputLine {
  const subscribed = SUBSCRIBED.exec(line)
  if (subscribed !== null) {
    return { kind: 'subscribed', granted: subscribed[1]!.split(', ').map(Number) }
  }
  // Debug lines end with `)`, never with `|<qos>|<hex>`, so a topic may look like anything.
  const message = MESSAGE.exec(line)
  if (message !== null) {
    return {
      kind: 'message',
      topic: message[1]!,
      qos: Number(message[2]),
      payload: Buffer.from(message[3]!, 'hex'),
    }
  }
  return { kind: 'debug', text: line }
}
