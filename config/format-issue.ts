import type { z } from 'zod'

/** Renders a path like `devices[0].psk.keyFile`. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = ''
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`
    else out += out === '' ? String(part) : `.${String(part)}`
  }
  return out === '' ? '(top level)' : out
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing'
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'a mapping'
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

/** One zod issue as `path: what was wrong`, quoting the bad value and the expected form. */
export function formatIssue(issue: z.core.$ZodIssue, input: unknown): string {
  switch (issue.code) {
    case 'unrecognized_keys': {
      const keys = issue.keys.map((k) => `"${k}"`).join(', ')
      return `${formatPath([...issue.path, ...(issue.keys.length === 1 ? issue.keys : [])])}: unknown key ${keys}`
    }
    case 'invalid_type': {
      const got = valueAt(input, issue.path)
      if (got === undefined) return `${formatPath(issue.path)}: missing, expected ${issue.expected}`
      return `${formatPath(issue.path)}: expected ${issue.expected}, got ${describeValue(got)}`
    }
    case 'invalid_union': {
      const got = valueAt(input, issue.path)
      return `${formatPath(issue.path)}: ${issue.message}, got ${describeValue(got)}`
    }
    default:
      return `${formatPath(issue.path)}: ${issue.message}, got ${describeValue(valueAt(input, issue.path))}`
  }
}
