import type { PolicyInput } from '../schema.js'
import { filtersIntersect } from '../topic-filter.js'
import type { AclAccess, AclEntry, AclParseResult, AclPatternEntry, AclTopicEntry } from './acl-file.js'

type RuleInput = PolicyInput['rules'][number]

/** A line of the acl_file the conversion did not reproduce exactly. */
export interface UnmappedLine {
  line: number
  reason: string
  /**
   * - `skipped`: no rule was written for the line.
   * - `narrowed`: a rule was written with less access than Mosquitto grants.
   * - `kept`: the rule was written, but our engine is stricter than Mosquitto in the case named.
   */
  outcome: 'skipped' | 'narrowed' | 'kept'
}

export interface AclConversion {
  policy: PolicyInput
  unmapped: UnmappedLine[]
}

export interface AclConversionOptions {
  /** Default `disconnect` (our default); Mosquitto's behaviour is `drop`. */
  deniedPublish?: 'disconnect' | 'drop'
}

/** Our schema's longest topic filter, in characters (`ruleSchema.topic`). */
const MAX_RULE_FILTER = 1024
const ANY_SUBSTITUTION = /%[cud]/
const SUBSTITUTION_LEVEL = /^%[cu]$/

/**
 * Converts a parsed acl_file to our policy rules, in file order:
 *
 * - `user X` + `topic read F` → `{ who: { username: X }, topic: F, action: 'subscribe' }`; lines before the
 *   first `user` → `who: 'anonymous'`; `pattern` lines → `who: 'everyone'` with `%c`/`%u` kept.
 * - read → subscribe (Mosquitto's `read` governs receiving; see MOSQUITTO_ACL_DIFFERENCES on SUBSCRIBE),
 *   write → publish, readwrite → both, deny → `effect: 'deny'` on both.
 *
 * Anything whose meaning would change is reported in `unmapped` and, where it
 * would grant more than Mosquitto does, left out or narrowed: the conversion
 * fails closed. Parse problems are reported there too, as skipped lines.
 */
export function aclToPolicy(parsed: AclParseResult, options: AclConversionOptions = {}): AclConversion {
  const unmapped: UnmappedLine[] = parsed.problems.map((p) => ({
    line: p.line,
    reason: `not converted: the line ${p.message}`,
    outcome: 'skipped' as const,
  }))
  const rules: RuleInput[] = []
  const converted: AclEntry[] = []
  for (const entry of parsed.entries) {
    const result = convertEntry(entry)
    if (result.rule) {
      rules.push(result.rule)
      converted.push(entry)
    }
    if (result.note) unmapped.push({ line: entry.line, ...result.note })
  }
  unmapped.push(...patternDenyConflicts(converted))
  unmapped.sort((a, b) => a.line - b.line)
  const policy: PolicyInput = { rules }
  if (options.deniedPublish !== undefined) policy.deniedPublish = options.deniedPublish
  return { policy, unmapped }
}

interface EntryResult {
  rule?: RuleInput
  note?: Omit<UnmappedLine, 'line'>
}

function convertEntry(entry: AclEntry): EntryResult {
  const skip = (reason: string): EntryResult => ({ note: { reason, outcome: 'skipped' } })
  const filter = entry.filter

  if (filter.length > MAX_RULE_FILTER) {
    return skip(`the filter is longer than the ${MAX_RULE_FILTER} characters our policy allows`)
  }
  if (entry.kind === 'topic' && ANY_SUBSTITUTION.test(filter)) {
    // aclfile__parse only counts %c/%u for `pattern` lines (add__acl_pattern); in a `topic` line they are text.
    return skip(
      'Mosquitto does not substitute %c/%u in `topic` lines (they match literally there); our engine would ' +
        'substitute them. Use `pattern` for per-client topics',
    )
  }
  if (entry.kind === 'pattern') {
    if (filter.includes('%d')) {
      return skip(
        'Mosquitto has no %d substitution (it matches literally there); our engine substitutes the device id',
      )
    }
    const partial = filter
      .split('/')
      .find((level) => ANY_SUBSTITUTION.test(level) && !SUBSTITUTION_LEVEL.test(level))
    if (partial !== undefined) {
      return skip(
        `level ${JSON.stringify(partial)} mixes %c/%u with other text; Mosquitto substitutes inside a level, ` +
          'our substitutions must fill a whole level',
      )
    }
  }

  const first = filter.split('/')[0]!
  let access = entry.access
  let note: EntryResult['note']
  if (first === '$share' && access !== 'deny') {
    // acl__check_dollar (src/security.c) refuses PUBLISH to $share; `read` is checked against the message topic.
    return skip(
      'Mosquitto never lets a client publish to `$share/...` and checks `read` against the message topic, so this ' +
        'line grants nothing there; our engine would allow shared subscriptions with it',
    )
  }
  if (first === '$share') {
    note = {
      reason:
        'a deny on `$share/...` never matches in Mosquitto (delivery is checked against the message topic); ours refuses matching shared subscriptions',
      outcome: 'kept',
    }
  }
  if (first === '$SYS' && (access === 'write' || access === 'readwrite')) {
    // acl__check_dollar: writes to $SYS are refused except $SYS/broker/connection/+/state (bridge status).
    const reason =
      'Mosquitto refuses every client PUBLISH to `$SYS/...` before the acl_file is consulted (except a bridge ' +
      'state topic), so the write access is dropped'
    if (access === 'write') return skip(reason)
    access = 'read'
    note = { reason, outcome: 'narrowed' }
  }

  const rule: RuleInput = {
    name: `mosquitto acl_file line ${entry.line}`,
    who: whoOf(entry),
    topic: filter,
    ...actionOf(access),
  }
  return note ? { rule, note } : { rule }
}

function whoOf(entry: AclEntry): RuleInput['who'] {
  if (entry.kind === 'pattern') return 'everyone'
  return entry.user === null ? 'anonymous' : { username: entry.user }
}

function actionOf(access: AclAccess): Pick<RuleInput, 'action' | 'effect'> {
  switch (access) {
    case 'read':
      return { action: 'subscribe', effect: 'allow' }
    case 'write':
      return { action: 'publish', effect: 'allow' }
    case 'readwrite':
      return { action: 'both', effect: 'allow' }
    case 'deny':
      return { action: 'both', effect: 'deny' }
  }
}

/**
 * mosquitto_acl_check_default checks the client's own `topic` lines first and
 * returns at the first allow, so a `pattern ... deny` never overrides a
 * matching `topic` allow of that client. Our deny wins over any allow. Reports
 * each converted pattern deny that overlaps a converted `topic` allow
 * (placeholders count as `+`).
 */
function patternDenyConflicts(entries: ReadonlyArray<AclEntry>): UnmappedLine[] {
  const allows = entries.filter((e): e is AclTopicEntry => e.kind === 'topic' && e.access !== 'deny')
  const denies = entries.filter((e): e is AclPatternEntry => e.kind === 'pattern' && e.access === 'deny')
  const out: UnmappedLine[] = []
  for (const deny of denies) {
    const denyFilter = deny.filter.replace(/%[cu]/g, '+')
    const overlapping = allows.filter((allow) => filtersIntersect(denyFilter, allow.filter))
    if (overlapping.length === 0) continue
    const who = overlapping
      .slice(0, 5)
      .map((a) => `${a.user === null ? 'anonymous' : `user ${JSON.stringify(a.user)}`} (line ${a.line})`)
      .join(', ')
    out.push({
      line: deny.line,
      reason:
        `Mosquitto consults a client's own \`topic\` lines before patterns, so for ${who}${overlapping.length > 5 ? ', ...' : ''} ` +
        'the overlapping allow wins over this pattern deny; in our policy the deny wins',
      outcome: 'kept',
    })
  }
  return out
}
