import type { z } from 'zod'
import { notUnderSecretKey } from './secret-keys.js'

/** Whether a message may quote the value at a path. */
export type QuotePolicy = (path: ReadonlyArray<PropertyKey>) => boolean

/** Renders a path like `devices[0].psk.keyFile`. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = ''
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`
    else out += out === '' ? String(part) : `.${String(part)}`
  }
  return out === '' ? '(top level)' : out
}

/** What was found, quoted only where `quote` allows: never under a secret key (config/secret-keys.ts). */
function describeValue(value: unknown, quote: boolean): string {
  if (value === undefined) return 'nothing'
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'a mapping'
  if (!quote) return `a ${typeof value} (value not shown, it may be secret)`
  if (typeof value === 'string') return `"${value.length > 40 ? `${value.slice(0, 40)}...` : value}" (string)`
  return `${String(value)} (${typeof value})`
}

function valueAt(root: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let node = root
  for (const part of path) {
    if (node === null || typeof node !== 'object') return undefined
    node = (node as Record<PropertyKey, unknown>)[part]
  }
  return node
}

/**
 * One zod issue as `path: what was wrong`, with the expected form and what was found. The value
 * found is quoted only where `mayQuote` allows: by default anywhere but at or under a secret key
 * (config/secret-keys.ts); the gateway config passes the stricter `mayQuoteValueAt`. A scalar
 * where a mapping or list was expected is never quoted (an inline `psk: <key>`).
 */
export function formatIssue(
  issue: z.core.$ZodIssue,
  input: unknown,
  mayQuote: QuotePolicy = notUnderSecretKey,
): string {
  const got = () => {
    const value = valueAt(input, issue.path)
    const containerExpected =
      issue.code === 'invalid_type' && ['object', 'array', 'record', 'map', 'set'].includes(issue.expected)
    return describeValue(value, !containerExpected && mayQuote(issue.path))
  }
  switch (issue.code) {
    case 'unrecognized_keys': {
      const keys = issue.keys.map((k) => `"${k}"`).join(', ')
      return `${formatPath([...issue.path, ...(issue.keys.length === 1 ? issue.keys : [])])}: unknown key ${keys}`
    }
    case 'invalid_type': {
      if (valueAt(input, issue.path) === undefined)
        return `${formatPath(issue.path)}: missing, expected ${issue.expected}`
      return `${formatPath(issue.path)}: expected ${issue.expected}, got ${got()}`
    }
    default:
      return `${formatPath(issue.path)}: ${issue.message}, got ${got()}`
  }
}
