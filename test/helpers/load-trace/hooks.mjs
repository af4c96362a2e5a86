/** Module hooks of the load trace (register.mjs): appends each resolved module and its importer. */
import { appendFileSync } from 'node:fs'

let file

export function initialize(data) {
  file = data.file
}

export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context)
  appendFileSync(file, `${JSON.stringify({ url: resolved.url, parent: context.parentURL ?? null })}\n`)
  return resolved
}
