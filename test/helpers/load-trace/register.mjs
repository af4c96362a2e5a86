/**
 * Records every module a Node process loads, for the import-graph test: run it with
 * `node --import <this file>` and LOAD_TRACE_FILE set. ES modules are recorded as they are
 * resolved (hooks.mjs, with the module that imported them); CommonJS modules, whose require()
 * calls no ESM hook sees on Node 20, are recorded at exit from require.cache, with the module that
 * first required them. One JSON line per module: {"url", "parent"}.
 */
import { appendFileSync } from 'node:fs'
import { createRequire, register } from 'node:module'
import { pathToFileURL } from 'node:url'

const file = process.env.LOAD_TRACE_FILE
if (file) {
  register('./hooks.mjs', import.meta.url, { data: { file } })
  const require = createRequire(import.meta.url)
  process.once('exit', () => {
    const parents = new Map()
    const cache = require.cache
    for (const mod of Object.values(cache)) {
      for (const child of mod?.children ?? []) {
        if (!parents.has(child.id)) parents.set(child.id, mod.id)
      }
    }
    const lines = Object.keys(cache).map((id) => {
      const parent = parents.get(id)
      return JSON.stringify({
        url: pathToFileURL(id).href,
        parent: parent === undefined ? null : pathToFileURL(parent).href,
        cjs: true,
      })
    })
    if (lines.length > 0) appendFileSync(file, `${lines.join('\n')}\n`)
  })
}
