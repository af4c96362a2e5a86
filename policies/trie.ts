import { isSubstitution } from './topic-filter.js'

/**
 * What the substitution levels stand for: `%c` the client id, `%u` the
 * username, `%d` the device id (a `Principal` is one).
 */
export interface PlaceholderValues {
  readonly clientId: string
  readonly username?: string | undefined
  readonly deviceId: string
}

/**
 * `value` if it can fill exactly one topic level, else `undefined`: a missing
 * or empty value, or one containing `/`, `+`, `#` or NUL, matches nothing.
 */
export function levelValue(value: string | undefined): string | undefined {
  if (value === undefined || value === '') return undefined
  const oneLevel = !value.includes('/') && !value.includes('+') && !value.includes('#')
  return oneLevel && !value.includes('\u0000') ? value : undefined
}

class TrieNode<T> {
  /**
   * Literal children. Most nodes have one (a device's `devices/dev-7/#`), kept
   * in `key`/`next` without a Map; from the second on, all live in `more`.
   */
  key: string | undefined = undefined
  next: TrieNode<T> | undefined = undefined
  more: Map<string, TrieNode<T>> | undefined = undefined
  plus: TrieNode<T> | undefined = undefined
  /** Placeholder children for `%c`, `%u`, `%d`. */
  client: TrieNode<T> | undefined = undefined
  user: TrieNode<T> | undefined = undefined
  device: TrieNode<T> | undefined = undefined
  /** Values whose filter ends at this node. */
  exact: T[] | undefined = undefined
  /** Values whose filter ends with `#` right below this node. */
  hash: T[] | undefined = undefined
}

function literalChild<T>(node: TrieNode<T>, level: string): TrieNode<T> | undefined {
  if (node.more !== undefined) return node.more.get(level)
  return node.key === level ? node.next : undefined
}

function* literalChildren<T>(node: TrieNode<T>): Iterable<[string, TrieNode<T>]> {
  if (node.more !== undefined) yield* node.more
  else if (node.key !== undefined && node.next !== undefined) yield [node.key, node.next]
}

/** The string equal to `value` already in `strings`, or `value` after adding it. */
export function intern(strings: Map<string, string>, value: string): string {
  const known = strings.get(value)
  if (known !== undefined) return known
  strings.set(value, value)
  return value
}

const DOLLAR = 36 // '$'

/**
 * A topic trie keyed by level, with special children for `+`, `#` and the
 * substitution placeholders. A walk costs about the number of levels times the
 * wildcard branching, independent of how many filters the trie holds.
 *
 * `$` topics: a first-level literal starting with `$` only ever equals a `$`
 * level; wildcards and placeholders at the first level never match one.
 */
export class TopicTrie<T> extends TrieNode<T> {
  // The trie is its own root node: one pointer less on every walk.
  private count = 0

  /** Number of values inserted. */
  get size(): number {
    return this.count
  }

  /**
   * Adds `value` under `filter`, a filter already checked by `validateFilter`.
   * Tries built together can share `levels`, which keeps one copy of each
   * level string (`devices` in 100,000 device rules), so walks touch less memory.
   */
  insert(filter: string, value: T, levels?: Map<string, string>): void {
    let node: TrieNode<T> = this
    for (const raw of filter.split('/')) {
      const level = levels ? intern(levels, raw) : raw
      if (level === '#') {
        node.hash = append(node.hash, value)
        this.count++
        return
      }
      node = child(node, level)
    }
    node.exact = append(node.exact, value)
    this.count++
  }

  /**
   * Pushes onto `out` every value whose filter (after substitution) matches
   * every topic the request `levels` can match: for a topic name, the filters
   * that match it; for a SUBSCRIBE filter, the filters that cover it.
   */
  covering(levels: ReadonlyArray<string>, who: PlaceholderValues, out: T[]): void {
    cover(this, levels, 0, who, out)
  }

  /** Pushes onto `out` every value whose filter matches some topic the request `levels` can match. */
  intersecting(levels: ReadonlyArray<string>, who: PlaceholderValues, out: T[]): void {
    intersect(this, levels, 0, who, out)
  }
}

function child<T>(node: TrieNode<T>, level: string): TrieNode<T> {
  if (level === '+') {
    node.plus ??= new TrieNode<T>()
    return node.plus
  }
  if (isSubstitution(level)) {
    if (level === '%c') {
      node.client ??= new TrieNode<T>()
      return node.client
    }
    if (level === '%u') {
      node.user ??= new TrieNode<T>()
      return node.user
    }
    node.device ??= new TrieNode<T>()
    return node.device
  }
  const existing = literalChild(node, level)
  if (existing) return existing
  const created = new TrieNode<T>()
  if (node.key === undefined && node.more === undefined) {
    node.key = level
    node.next = created
  } else {
    if (node.more === undefined) {
      node.more = new Map([[node.key!, node.next!]])
      node.key = undefined
      node.next = undefined
    }
    node.more.set(level, created)
  }
  return created
}

/** `values` with `value` added; a new list is sized exactly, as most hold one value. */
function append<T>(values: T[] | undefined, value: T): T[] {
  if (values === undefined) return [value]
  values.push(value)
  return values
}

function pushAll<T>(out: T[], values: ReadonlyArray<T> | undefined): void {
  if (values === undefined) return
  for (let i = 0; i < values.length; i++) out.push(values[i]!)
}

/**
 * Whether a placeholder with `value` matches the concrete request level `q`
 * (callers have ruled out `+`, `#` and a `$` first level).
 */
function fills(value: string | undefined, q: string): boolean {
  // Validity is checked only on a match, which keeps the common miss cheap.
  return q === value && levelValue(value) !== undefined
}

/** Whether a placeholder may match some level at depth `i` (for `+` and `#` in a request). */
function fillsAny(value: string | undefined, i: number): boolean {
  const v = levelValue(value)
  return v !== undefined && !(i === 0 && v.charCodeAt(0) === DOLLAR)
}

function cover<T>(
  node: TrieNode<T>,
  levels: ReadonlyArray<string>,
  i: number,
  who: PlaceholderValues,
  out: T[],
) {
  const q = levels[i]
  const dollar = i === 0 && q !== undefined && q.charCodeAt(0) === DOLLAR
  if (!dollar) pushAll(out, node.hash)
  if (q === undefined) {
    pushAll(out, node.exact)
    return
  }
  if (q === '#') return
  if (q === '+') {
    if (node.plus) cover(node.plus, levels, i + 1, who, out)
    return
  }
  const next = literalChild(node, q)
  if (next) cover(next, levels, i + 1, who, out)
  if (dollar) return
  if (node.plus) cover(node.plus, levels, i + 1, who, out)
  if (node.client && fills(who.clientId, q)) cover(node.client, levels, i + 1, who, out)
  if (node.user && fills(who.username, q)) cover(node.user, levels, i + 1, who, out)
  if (node.device && fills(who.deviceId, q)) cover(node.device, levels, i + 1, who, out)
}

function intersect<T>(
  node: TrieNode<T>,
  levels: ReadonlyArray<string>,
  i: number,
  who: PlaceholderValues,
  out: T[],
) {
  const q = levels[i]
  if (q === '#') {
    // Everything at or below this node, except `$` first levels.
    everything(node, i, who, out)
    return
  }
  if (q === '+') {
    pushAll(out, node.hash)
    for (const [level, next] of literalChildren(node)) {
      if (i === 0 && level.charCodeAt(0) === DOLLAR) continue
      intersect(next, levels, i + 1, who, out)
    }
    if (node.plus) intersect(node.plus, levels, i + 1, who, out)
    if (node.client && fillsAny(who.clientId, i)) intersect(node.client, levels, i + 1, who, out)
    if (node.user && fillsAny(who.username, i)) intersect(node.user, levels, i + 1, who, out)
    if (node.device && fillsAny(who.deviceId, i)) intersect(node.device, levels, i + 1, who, out)
    return
  }
  // A concrete level, or the end of the request: the same as covering.
  const dollar = i === 0 && q !== undefined && q.charCodeAt(0) === DOLLAR
  if (!dollar) pushAll(out, node.hash)
  if (q === undefined) {
    pushAll(out, node.exact)
    return
  }
  const next = literalChild(node, q)
  if (next) intersect(next, levels, i + 1, who, out)
  if (dollar) return
  if (node.plus) intersect(node.plus, levels, i + 1, who, out)
  if (node.client && fills(who.clientId, q)) intersect(node.client, levels, i + 1, who, out)
  if (node.user && fills(who.username, q)) intersect(node.user, levels, i + 1, who, out)
  if (node.device && fills(who.deviceId, q)) intersect(node.device, levels, i + 1, who, out)
}

function everything<T>(node: TrieNode<T>, i: number, who: PlaceholderValues, out: T[]): void {
  pushAll(out, node.hash)
  pushAll(out, node.exact)
  for (const [level, next] of literalChildren(node)) {
    if (i === 0 && level.charCodeAt(0) === DOLLAR) continue
    everything(next, i + 1, who, out)
  }
  if (node.plus) everything(node.plus, i + 1, who, out)
  if (node.client && fillsAny(who.clientId, i)) everything(node.client, i + 1, who, out)
  if (node.user && fillsAny(who.username, i)) everything(node.user, i + 1, who, out)
  if (node.device && fillsAny(who.deviceId, i)) everything(node.device, i + 1, who, out)
}
