import { aclFilterProblem } from './acl-filter.js'
import { type LineLimits, type LineProblem, shorten, splitLines, trimC, trimEndC } from './lines.js'

/**
 * Mosquitto 2.0's `acl_file` grammar, parsed the way `aclfile__parse`
 * (src/security_default.c) reads it:
 *
 * - Each line loses its trailing white space. A `#` in the first column makes
 *   a comment; an indented `#` is an error. Blank lines are skipped.
 * - Words are separated by spaces only (`strtok_r(buf, " ")`): a tab after a
 *   keyword makes the line an error.
 * - `user <name>`: the rest of the line, trimmed, may hold spaces. Lines before
 *   the first `user` belong to clients without a username.
 * - `topic [read|write|readwrite|deny] <filter>` and the same for `pattern`:
 *   with a single word, that word is the filter and the access is readwrite
 *   (so `topic read` is readwrite access to the topic "read"). Otherwise the
 *   filter is the rest of the line, trimmed, and may hold spaces. The filter
 *   must pass `mosquitto_sub_topic_check`.
 * - `pattern` lines apply to every client wherever they appear; `%c` and `%u`
 *   are substituted only in them.
 *
 * Mosquitto refuses to start on the first broken line; this parser reports
 * every broken line in `problems` and carries on.
 */

export type AclAccess = 'read' | 'write' | 'readwrite' | 'deny'

export interface AclTopicEntry {
  kind: 'topic'
  line: number
  /** The `user` section the line is in; null before the first `user` (anonymous clients). */
  user: string | null
  access: AclAccess
  filter: string
}

export interface AclPatternEntry {
  kind: 'pattern'
  line: number
  access: AclAccess
  filter: string
}

export type AclEntry = AclTopicEntry | AclPatternEntry

export interface AclParseResult {
  entries: AclEntry[]
  /** Lines Mosquitto would refuse (it would not start); they were skipped. */
  problems: LineProblem[]
  /** Lines Mosquitto accepts but that probably do not mean what they say. */
  warnings: LineProblem[]
}

const ACCESS: ReadonlySet<string> = new Set(['read', 'write', 'readwrite', 'deny'])

export function parseAclFile(input: string | Uint8Array, limits?: LineLimits): AclParseResult {
  const { lines, problems } = splitLines(input, 'an acl_file', limits)
  const entries: AclEntry[] = []
  const warnings: LineProblem[] = []
  let user: string | null = null
  for (const { line, text: raw } of lines) {
    const text = trimEndC(raw)
    if (text.startsWith('#')) continue
    const words = new Words(text)
    const keyword = words.next()
    if (keyword === undefined) continue
    const report = (message: string) => problems.push({ line, text: shorten(text), message })

    if (keyword === 'user') {
      const rest = words.rest()
      if (rest === undefined) {
        report('has `user` without a name')
        continue
      }
      user = trimC(rest)
      continue
    }
    if (keyword !== 'topic' && keyword !== 'pattern') {
      const hint = /[\t\v\f]/.test(keyword) ? ' (words must be separated by spaces, not tabs)' : ''
      report(
        `starts with ${JSON.stringify(keyword)}; expected \`user\`, \`topic\`, \`pattern\` or a # comment${hint}`,
      )
      continue
    }
    const first = words.next()
    if (first === undefined) {
      report(`has \`${keyword}\` without a topic filter`)
      continue
    }
    const rest = words.rest()
    let access: AclAccess = 'readwrite'
    let filter = first
    if (rest !== undefined) {
      if (!ACCESS.has(first)) {
        report(`has access ${JSON.stringify(first)}; expected read, write, readwrite or deny`)
        continue
      }
      access = first as AclAccess
      filter = trimC(rest)
    } else if (ACCESS.has(first)) {
      warnings.push({
        line,
        text: shorten(text),
        message: `has no filter after \`${first}\`, so Mosquitto reads "${first}" as the filter with readwrite access`,
      })
    }
    const bad = aclFilterProblem(filter)
    if (bad !== null) {
      report(`has topic filter ${JSON.stringify(shorten(filter))}, which Mosquitto refuses: ${bad}`)
      continue
    }
    if (keyword === 'topic') {
      entries.push({ kind: 'topic', line, user, access, filter })
    } else {
      if (!filter.includes('%c') && !filter.includes('%u')) {
        warnings.push({
          line,
          text: shorten(text),
          message:
            'is a pattern without %c or %u: it applies to every client (Mosquitto warns about this too)',
        })
      }
      entries.push({ kind: 'pattern', line, access, filter })
    }
  }
  problems.sort((a, b) => a.line - b.line)
  return { entries, problems, warnings }
}

/** `strtok_r` with the delimiter set " ": words split on spaces, then "the rest of the line". */
class Words {
  #pos = 0
  readonly #text: string

  constructor(text: string) {
    this.#text = text
  }

  /** The next space-delimited word (leading spaces skipped), or undefined at the end. */
  next(): string | undefined {
    const text = this.#text
    while (this.#pos < text.length && text[this.#pos] === ' ') this.#pos++
    if (this.#pos >= text.length) return undefined
    const start = this.#pos
    while (this.#pos < text.length && text[this.#pos] !== ' ') this.#pos++
    const word = text.slice(start, this.#pos)
    if (this.#pos < text.length) this.#pos++ // strtok_r consumes one delimiter
    return word
  }

  /** `strtok_r(NULL, "")`: everything after the last word's delimiter, or undefined when nothing is left. */
  rest(): string | undefined {
    if (this.#pos >= this.#text.length) return undefined
    const rest = this.#text.slice(this.#pos)
    this.#pos = this.#text.length
    return rest
  }
}
