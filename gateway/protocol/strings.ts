import { isUtf8 } from 'node:buffer'

/** What is wrong with a string or topic, or null when it is acceptable. */
export type StringFault = 'invalid_string' | 'invalid_topic' | 'invalid_filter' | null

const PLUS = 0x2b
const HASH = 0x23
const SLASH = 0x2f

/**
 * An MQTT UTF-8 string (MQTT 3.1.1 section 1.5.3) in `buf[start, end)`: well-formed
 * UTF-8 (no surrogates, no overlong forms, MQTT-1.5.3-1), no U+0000 (MQTT-1.5.3-2),
 * and none of the control characters U+0001-U+001F and U+007F-U+009F, on which a
 * receiver MAY close; the gateway does. ASCII is checked byte by byte; only a
 * string with other bytes goes through the UTF-8 decoder.
 */
export function checkString(buf: Buffer, start: number, end: number): StringFault {
  let ascii = true
  for (let i = start; i < end; i++) {
    const b = buf[i]!
    if (b < 0x20 || b === 0x7f) return 'invalid_string'
    if (b >= 0x80) {
      ascii = false
      // U+0080-U+009F are C2 80 to C2 9F.
      if (b === 0xc2 && i + 1 < end && buf[i + 1]! <= 0x9f) return 'invalid_string'
    }
  }
  if (!ascii && !isUtf8(buf.subarray(start, end))) return 'invalid_string'
  return null
}

/** A topic name (PUBLISH, Will topic): a valid string, at least one character, no wildcards (MQTT-4.7.1-1, MQTT-4.7.3-1). */
export function checkTopicName(buf: Buffer, start: number, end: number): StringFault {
  if (end === start) return 'invalid_topic'
  const fault = checkString(buf, start, end)
  if (fault) return fault
  for (let i = start; i < end; i++) {
    const b = buf[i]!
    if (b === PLUS || b === HASH) return 'invalid_topic'
  }
  return null
}

/**
 * A topic filter (SUBSCRIBE, UNSUBSCRIBE): a valid string, at least one character,
 * `+` only as a whole level, `#` only as the whole last level (MQTT-4.7.1-2, -3).
 * Multi-byte UTF-8 never holds bytes below 0x80, so the wildcards and `/` are found byte by byte.
 */
export function checkTopicFilter(buf: Buffer, start: number, end: number): StringFault {
  if (end === start) return 'invalid_filter'
  const fault = checkString(buf, start, end)
  if (fault) return fault
  for (let i = start; i < end; i++) {
    const b = buf[i]!
    if (b !== PLUS && b !== HASH) continue
    const wholeLevel = (i === start || buf[i - 1] === SLASH) && (i + 1 === end || buf[i + 1] === SLASH)
    if (!wholeLevel) return 'invalid_filter'
    if (b === HASH && i + 1 !== end) return 'invalid_filter'
  }
  return null
}
