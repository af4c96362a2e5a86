import type { z } from 'zod'

/** One key of a zod object schema, where it sits and whether it holds a mapping or list. */
export interface SchemaKey {
  key: string
  /** Like `devices[].psk.keyFile`: `[]` for any list index. */
  path: string
  /** Its schema (optional, default and the like unwrapped) is an object, a list or a union of objects. */
  container: boolean
}

interface Def {
  type: string
  shape?: Record<string, z.ZodType>
  element?: z.ZodType
  innerType?: z.ZodType
  in?: z.ZodType
  options?: z.ZodType[]
}

const defOf = (schema: z.ZodType): Def => (schema as unknown as { _zod: { def: Def } })._zod.def

function unwrap(schema: z.ZodType): Def {
  const def = defOf(schema)
  if (def.innerType) return unwrap(def.innerType)
  if (def.type === 'pipe' && def.in) return unwrap(def.in)
  return def
}

function isContainer(def: Def): boolean {
  if (def.type === 'object' || def.type === 'array') return true
  return def.type === 'union' && (def.options ?? []).some((option) => isContainer(unwrap(option)))
}

/**
 * Every key of `schema`, through objects, lists, unions (each option), optional, default,
 * prefault, nullable and pipes: what a config file may hold. Throws on a wrapper it does not
 * know, so a new kind of schema cannot hide keys from the tests that use this.
 */
export function schemaKeys(schema: z.ZodType): SchemaKey[] {
  const keys: SchemaKey[] = []
  const walk = (node: z.ZodType, path: string): void => {
    const def = unwrap(node)
    switch (def.type) {
      case 'object':
        for (const [key, child] of Object.entries(def.shape ?? {})) {
          const childPath = path === '' ? key : `${path}.${key}`
          keys.push({ key, path: childPath, container: isContainer(unwrap(child)) })
          walk(child, childPath)
        }
        return
      case 'array':
        if (def.element) walk(def.element, `${path}[]`)
        return
      case 'union':
        for (const option of def.options ?? []) walk(option, path)
        return
      case 'string':
      case 'number':
      case 'boolean':
      case 'enum':
      case 'literal':
      case 'unknown':
        return
      default:
        throw new Error(`schemaKeys: no rule for a zod "${def.type}" at ${path || '(top level)'}`)
    }
  }
  walk(schema, '')
  // A key in each option of a union is one key.
  return keys.filter((k, i) => keys.findIndex((o) => o.path === k.path) === i)
}
