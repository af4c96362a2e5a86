/**
 * What a cloud broker refuses in a topic name, checked before a message is
 * accepted or sent: a PUBLISH a broker refuses as malformed makes it drop the
 * connection, and the same record sent again would wedge the uplink.
 *
 * MQTT 3.1.1 §1.5.3 and MQTT 5 §1.5.4: UTF-8 without U+0000 and without
 * surrogates; control characters (U+0001–U+001F, U+007F–U+009F) and
 * non-characters (U+FDD0–U+FDEF, U+xFFFE, U+xFFFF) "SHOULD NOT" appear and a
 * receiver MAY close on them, which mosquitto does. A topic name carries no
 * wildcard (MQTT-3.3.2-2) and is not empty.
 */
export function topicTextProblem(topic: string): string | undefined {
  if (topic.length === 0) return 'it is empty'
  for (let i = 0; i < topic.length; i++) {
    const c = topic.charCodeAt(i)
    if (c === 0x2b || c === 0x23) return `it holds the wildcard "${String.fromCharCode(c)}" at ${i}`
    if (c <= 0x1f || (c >= 0x7f && c <= 0x9f)) return `it holds the control character U+${hex(c)} at ${i}`
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = topic.charCodeAt(i + 1)
      if (!(next >= 0xdc00 && next <= 0xdfff)) return `it holds a lone surrogate U+${hex(c)} at ${i}`
      const cp = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00)
      if ((cp & 0xfffe) === 0xfffe) return `it holds the non-character U+${hex(cp)} at ${i}`
      i++
      continue
    }
    if (c >= 0xdc00 && c <= 0xdfff) return `it holds a lone surrogate U+${hex(c)} at ${i}`
    if ((c >= 0xfdd0 && c <= 0xfdef) || c === 0xfffe || c === 0xffff)
      return `it holds the non-character U+${hex(c)} at ${i}`
  }
  return undefined
}

const hex = (n: number) => n.toString(16).toUpperCase().padStart(4, '0')
