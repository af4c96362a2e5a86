import { isUtf8 } from 'node:buffer'

/** What is wrong with a string or topic, or null when it is acceptable. */
export type StringFault = 'invalid_string' | 'invalid_topic' | 'invalid_filter' | null

const PLUS = 0x2b
const HASH = 0x23
const SLASH = 0x2f

const STRING = 0
const TOPIC_NAME = 1
const TOPIC_FILTER = 2

/**
 * One pass over `buf[start, end)`: the MQTT UTF-8 string rules, and for a topic
 * name or filter the wildcard rules. Multi-byte UTF-8 never holds bytes below
 * 0x80, so control characters, wildcards and `/` are found byte by byte; only
 * a string with bytes of 0x80 and above goes through the UTF-8 decoder.
 */
function scan(buf: Buffer, start: number, end: number, kind: number): StringFault {
  let ascii = true
  let wildcard: StringFault = null
  for (let i = start; i < end; i++) {
    const b = buf[i]!
    if (b < 0x20 || b === 0x7f) return 'invalid_string'
    if (b >= 0x80) {
      ascii = false
      // U+0080-U+009F are C2 80 to C2 9F.
      if (b === 0xc2 && i + 1 < end && buf[i + 1]! <= 0x9f) return 'invalid_string'
    } else if ((b === PLUS || b === HASH) && wildcard === null) {
      if (kind === TOPIC_NAME) wildcard = 'invalid_topic'
      else if (kind === TOPIC_FILTER) {
        const wholeLevel = (i === start || buf[i - 1] === SLASH) && (i + 1 === end || buf[i + 1] === SLASH)
        if (!wholeLevel || (b === HASH && i + 1 !== end)) wildcard = 'invalid_filter'
      }
    }
  }
  if (!ascii && !isUtf8(buf.subarray(start, end))) return 'invalid_string'
  return wildcard
}

/**
 * An MQTT UTF-8 string (MQTT 3.1.1 section 1.5.3) in `buf[start, end)`: well-formed
 * UTF-8 (no surrogates, no overlong forms, MQTT-1.5.3-1), no U+0000 (MQTT-1.5.3-2),
 * and none of the control characters U+0001-U+001F and U+007F-U+009F, on which a
 * receiver MAY close; the gateway does.
 */
export function checkString(buf: Buffer, start: number, end: number): StringFault {
  return scan(buf, start, end, STRING)
}

/** A topic name (PUBLISH, Will topic): a valid string, at least one character, no wildcards (MQTT-4.7.1-1, MQTT-4.7.3-1). */
export function checkTopicName(buf: Buffer, start: number, end: number): StringFault {
  return end === start ? 'invalid_topic' : scan(buf, start, end, TOPIC_NAME)
}

/** A topic filter (SUBSCRIBE, UNSUBSCRIBE): a valid string, at least one character, `+` only as a whole level, `#` only as the whole last level (MQTT-4.7.1-2, -3). */
export function checkTopicFilter(buf: Buffer, start: number, end: number): StringFault {
  return end === start ? 'invalid_filter' : scan(buf, start, end, TOPIC_FILTER)
}
