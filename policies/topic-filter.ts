/**
 * MQTT 3.1.1 topic names and filters (§4.7), as pure functions on strings.
 * The trie (`trie.ts`) implements the same semantics for many filters at once;
 * these are the reference it is tested against.
 */

/** The substitution levels of a rule's filter: client id, username, device id. */
export const SUBSTITUTIONS = ['%c', '%u', '%d'] as const
export type SubstitutionToken = (typeof SUBSTITUTIONS)[number]

const TOKEN_INSIDE = /%[cud]/

export function isSubstitution(level: string): level is SubstitutionToken {
  return level === '%c' || level === '%u' || level === '%d'
}

function isWildcard(level: string): boolean {
  return level === '+' || level === '#'
}

/**
 * Why `filter` is not a valid topic filter, or `null` when it is. With
 * `substitutions` (the default, for rule filters) `%c`, `%u` and `%d` must each
 * fill a whole level; without it (a client's SUBSCRIBE) they are plain text.
 */
export function validateFilter(filter: string, options: { substitutions?: boolean } = {}): string | null {
  if (filter.length === 0) return 'expected a non-empty topic filter'
  if (filter.includes('\u0000')) return 'expected a topic filter without NUL characters'
  const substitutions = options.substitutions ?? true
  const levels = filter.split('/')
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!
    if (level.includes('#')) {
      if (level !== '#') return `'#' must fill a whole level, got level "${level}"`
      if (i !== levels.length - 1)
        return `'#' must be the last level, got it at level ${i + 1} of ${levels.length}`
    }
    if (level.includes('+') && level !== '+') return `'+' must fill a whole level, got level "${level}"`
    if (substitutions && !isSubstitution(level) && TOKEN_INSIDE.test(level)) {
      return `a substitution (%c, %u, %d) must fill a whole level, got level "${level}"`
    }
  }
  return null
}

/** Whether `topic` can be a PUBLISH topic name: not empty, no wildcards, no NUL. */
export function isValidTopicName(topic: string): boolean {
  return topic.length > 0 && !topic.includes('+') && !topic.includes('#') && !topic.includes('\u0000')
}

/**
 * Whether the topic name `topic` matches `filter` (MQTT 3.1.1 §4.7). `#` also
 * matches the parent level (`sport/#` matches `sport`); a filter starting with
 * a wildcard does not match a topic starting with `$` (§4.7.2).
 */
export function topicMatchesFilter(topic: string, filter: string): boolean {
  const t = topic.split('/')
  const f = filter.split('/')
  if (topic.startsWith('$') && isWildcard(f[0]!)) return false
  for (let i = 0; i < f.length; i++) {
    const level = f[i]!
    if (level === '#') return true
    if (i >= t.length) return false
    if (level !== '+' && level !== t[i]) return false
  }
  return t.length === f.length
}

/**
 * Whether every topic the `requested` filter can match is also matched by
 * `ruleFilter` (a SUBSCRIBE is allowed only then). `+` in the request is
 * covered only by `+` or `#` in the rule, `#` only by `#`. Both are plain
 * filters: substitute a rule's `%c`/`%u`/`%d` first.
 */
export function filterCoveredBy(requested: string, ruleFilter: string): boolean {
  const q = requested.split('/')
  const r = ruleFilter.split('/')
  if (q[0]!.startsWith('$') && isWildcard(r[0]!)) return false
  for (let i = 0; i < r.length; i++) {
    const rule = r[i]!
    if (rule === '#') return true
    const req = q[i]
    if (req === undefined || req === '#') return false
    if (rule === '+') continue
    if (req !== rule) return false
  }
  return q.length === r.length
}

/**
 * Whether some topic name is matched by both filters. A deny rule refuses a
 * SUBSCRIBE whose filter overlaps it at all: the subscription could otherwise
 * deliver a topic the deny rule forbids.
 */
export function filtersIntersect(a: string, b: string): boolean {
  const x = a.split('/')
  const y = b.split('/')
  const x0 = x[0]!
  const y0 = y[0]!
  if ((x0.startsWith('$') && isWildcard(y0)) || (y0.startsWith('$') && isWildcard(x0))) return false
  const n = Math.max(x.length, y.length)
  for (let i = 0; i < n; i++) {
    const p = x[i]
    const q = y[i]
    if (p === '#' || q === '#') return true
    if (p === undefined || q === undefined) return false
    if (p !== '+' && q !== '+' && p !== q) return false
  }
  return true
}
