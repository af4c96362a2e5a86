/** Mosquitto's limits on a subscription filter (`mosquitto_sub_topic_check` as built into the broker). */
export const MAX_FILTER_BYTES = 65_535
export const MAX_FILTER_SEPARATORS = 200

/**
 * Why Mosquitto 2.0 refuses `filter` as an ACL topic, or `null` when it
 * accepts it. Mirrors `mosquitto_sub_topic_check` (lib/util_topic.c) with the
 * broker's TOPIC_HIERARCHY_LIMIT: `+` fills a whole level, `#` fills the last
 * level, at most 65,535 bytes and 200 `/`. `%c`/`%u` are plain text here.
 */
export function aclFilterProblem(filter: string): string | null {
  let separators = 0
  for (let i = 0; i < filter.length; i++) {
    const ch = filter[i]
    const before = i === 0 ? undefined : filter[i - 1]
    const after = filter[i + 1]
    if (ch === '+') {
      if ((before !== undefined && before !== '/') || (after !== undefined && after !== '/')) {
        return `'+' must fill a whole level (at character ${i + 1})`
      }
    } else if (ch === '#') {
      if ((before !== undefined && before !== '/') || after !== undefined) {
        return `'#' must be the whole last level (at character ${i + 1})`
      }
    } else if (ch === '/') {
      separators++
    }
  }
  const bytes = Buffer.byteLength(filter, 'utf8')
  if (bytes > MAX_FILTER_BYTES) return `is ${bytes} bytes long; Mosquitto allows ${MAX_FILTER_BYTES}`
  if (separators > MAX_FILTER_SEPARATORS) {
    return `has ${separators + 1} levels; Mosquitto allows ${MAX_FILTER_SEPARATORS + 1}`
  }
  return null
}
