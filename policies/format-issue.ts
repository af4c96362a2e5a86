import type { z } from 'zod'
import { formatIssue, formatPath } from '../config/format-issue.js'

const WHO_EXPECTED =
  'expected "everyone", "anonymous" or a mapping with one key: device, username, clientId or group'

/**
 * One zod issue of a policy file as `rules[3].maxQos: what was wrong`, quoting
 * the bad value, with the rule's name appended when it has one.
 */
export function formatPolicyIssue(issue: z.core.$ZodIssue, input: unknown): string {
  const line = describe(issue, input)
  const name = ruleNameAt(input, issue.path)
  return name === undefined ? line : `${line} (rule "${name}")`
}

function describe(issue: z.core.$ZodIssue, input: unknown): string {
  if (issue.code !== 'invalid_union') return formatIssue(issue, input)
  // A branch whose shape fits and only a field inside is wrong says the most.
  const nested = issue.errors.filter((branch) => branch.every((i) => i.path.length > 0))
  if (nested.length === 1 && nested[0]![0]) {
    const inner = nested[0]![0]
    return describe({ ...inner, path: [...issue.path, ...inner.path] } as z.core.$ZodIssue, input)
  }
  const got = `got ${describeValue(valueAt(input, issue.path))}`
  const where = formatPath(issue.path)
  if (issue.path.at(-1) === 'who') return `${where}: ${WHO_EXPECTED}, ${got}`
  const values = issue.errors.flatMap((branch) =>
    branch.length === 1 && branch[0]?.code === 'invalid_value' ? branch[0].values : [undefined],
  )
  if (values.every((v) => v !== undefined)) {
    return `${where}: expected one of ${values.map((v) => JSON.stringify(v)).join(', ')}, ${got}`
  }
  return formatIssue(issue, input)
}

function ruleNameAt(input: unknown, path: ReadonlyArray<PropertyKey>): string | undefined {
  if (path[0] !== 'rules' || typeof path[1] !== 'number') return undefined
  if (input === null || typeof input !== 'object') return undefined
  const rules = (input as { rules?: unknown }).rules
  if (!Array.isArray(rules)) return undefined
  const rule: unknown = rules[path[1]]
  if (rule === null || typeof rule !== 'object') return undefined
  const name = (rule as { name?: unknown }).name
  return typeof name === 'string' && name.length > 0 ? name : undefined
}

function valueAt(root: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let node = root
  for (const part of path) {
    if (node === null || typeof node !== 'object') return undefined
    node = (node as Record<PropertyKey, unknown>)[part]
  }
  return node
}

/** As config's messages describe a value: quoted strings, `a mapping`, `a list`. */
function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing'
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'a mapping'
  if (typeof value === 'string') return `"${value.length > 40 ? `${value.slice(0, 40)}...` : value}" (string)`
  return `${String(value)} (${typeof value})`
}
