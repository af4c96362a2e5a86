/**
 * Frames of V8 profiles (CPU and allocation) taken from the bundled CLI (dist/bin/, scripts/bundle.mjs),
 * mapped back through each chunk's source map to the file the function was written in: a project
 * .ts file is named as its dist/ .js (so stage rules read the same as for the unbundled
 * dist/cli/main.js), a package file by its node_modules path. Used by bench/profile-summary.mjs
 * and bench/alloc-summary.mjs.
 */
import { readFileSync } from 'node:fs'
import { SourceMap } from 'node:module'
import { dirname, relative, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const sourceMaps = new Map()
function sourceMapOf(url) {
  if (!/\/dist\/bin\/.*\.js$/.test(url)) return null
  if (!sourceMaps.has(url)) {
    let found = null
    try {
      const file = fileURLToPath(url)
      const dir = dirname(file)
      found = {
        map: new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8'))),
        dir,
        root: dir.replace(/\/dist\/bin(\/.*)?$/, ''),
      }
    } catch {
      // No map beside the chunk: its frames keep the chunk's name.
    }
    sourceMaps.set(url, found)
  }
  return sourceMaps.get(url)
}

/** Points a frame of a bundle chunk at the file its function was written in, and its line there. */
export function mapFrame(callFrame) {
  const found = sourceMapOf(callFrame.url)
  if (!found) return
  const entry = found.map.findEntry(callFrame.lineNumber, callFrame.columnNumber)
  if (!entry?.originalSource) return
  const file = resolve(found.dir, entry.originalSource.replace(/^file:\/\//, ''))
  callFrame.url = file.includes('/node_modules/')
    ? pathToFileURL(file).href
    : pathToFileURL(resolve(found.root, 'dist', relative(found.root, file).replace(/\.ts$/, '.js'))).href
  callFrame.lineNumber = entry.originalLine
}
