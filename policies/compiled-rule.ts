import type { Rule, Who } from './schema.js'
import { isSubstitution } from './topic-filter.js'
import { levelValue, type PlaceholderValues } from './trie.js'
import type { CompiledRule } from './types.js'

/** The rule as the engine keeps it: frozen, with its index in the file and a display label. */
export function compileRule(rule: Rule, index: number): CompiledRule {
  return Object.freeze({ ...rule, index, label: rule.name ?? `rule #${index}` })
}

/** `who` in words: `everyone`, `anonymous`, `device "dev-1"`, `group "cameras"`, ... */
export function describeWho(who: Who): string {
  if (who === 'everyone' || who === 'anonymous') return who
  if ('device' in who) return `device "${who.device}"`
  if ('username' in who) return `username "${who.username}"`
  if ('clientId' in who) return `clientId "${who.clientId}"`
  return `group "${who.group}"`
}

/**
 * The rule's filter as text between substitution levels, for `ruleFilter`:
 * `devices/%d/#` → `['devices/', '%d', '/#']`; `undefined` when it has none.
 */
export function filterTemplate(filter: string): ReadonlyArray<string> | undefined {
  const levels = filter.split('/')
  if (!levels.some(isSubstitution)) return undefined
  const parts: string[] = []
  let text = ''
  levels.forEach((level, i) => {
    if (i > 0) text += '/'
    if (!isSubstitution(level)) {
      text += level
      return
    }
    parts.push(text, level)
    text = ''
  })
  parts.push(text)
  return parts
}

/** The filter with `%c`, `%u` and `%d` levels replaced by the principal's values. */
export function substituteFilter(
  filter: string,
  template: ReadonlyArray<string> | undefined,
  who: PlaceholderValues,
): string {
  if (template === undefined) return filter
  let out = ''
  for (const part of template) {
    if (part === '%c') out += levelValue(who.clientId) ?? part
    else if (part === '%u') out += levelValue(who.username) ?? part
    else if (part === '%d') out += levelValue(who.deviceId) ?? part
    else out += part
  }
  return out
}
