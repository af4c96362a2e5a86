/**
 * Bundles the compiled CLI (dist/cli/main.js, from tsc) into dist/bin/: the entry
 * `edge-gateway.js` and the chunks each command loads when it runs.
 *
 * Why: Node 20 reads, compiles and links every ES module file on its own. `start` loaded about
 * 790 files (zod, rxjs, aedes and mqtt are each many small files), and that was most of the
 * CPU between spawn and the first CONNACK (docs/performance.md, "Start-up"). Bundled, the same
 * code is a few files; `--splitting` keeps the CLI's lazy loading (a command's code is a chunk
 * of its own, loaded by the dynamic import that names it).
 *
 * Left out of the bundle: pino-pretty, which core/logger.ts loads only for a terminal (or
 * `log.pretty`), from node_modules.
 *
 * The input is tsc's output, not the TypeScript sources: what runs is what `tsc` type-checked
 * and emitted, and esbuild follows each file's source map back to the .ts source.
 */
import { readFile, rm, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { debugOffWhenUnset } from './bundle-plugins.mjs'

/**
 * Packages' own source maps point at sources most do not ship (mqtt's name its TypeScript
 * files), so the bundle's map would name files nobody has; without their `sourceMappingURL`
 * line, the bundle maps a package's code to its JavaScript, carried in the map.
 */
const packageSourceMapsOff = {
  name: 'package-source-maps-off',
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/].*\.[cm]?js$/ }, async (args) => ({
      contents: (await readFile(args.path, 'utf8')).replace(/\/\/# sourceMappingURL=\S*\s*$/, ''),
      loader: 'js',
    }))
  },
}

const root = fileURLToPath(new URL('../', import.meta.url))
const outdir = `${root}dist/bin`

/**
 * Code the gateway never runs, left out so that a start does not compile it (compiling is about
 * a fifth of a start's CPU): zod's error messages in 40-odd languages (the gateway speaks
 * English: `z.locales` keeps `en` alone), and what mqtt.js needs only for WebSocket brokers (the
 * cloud link is `mqtts` only, bridge/cloud-link.ts). A stub throws, naming what was left out, if
 * anything ever calls it. (mqtt.js's SOCKS support stays: it is used for `mqtts` too, when
 * MQTTJS_SOCKS_PROXY is set.)
 */
const unusedCodeOut = {
  name: 'unused-code-out',
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/]zod[\\/]v4[\\/]locales[\\/]index\.js$/ }, (args) => ({
      contents: 'export { default as en } from "./en.js";',
      loader: 'js',
      resolveDir: dirname(args.path),
    }))
    b.onResolve({ filter: /^ws$/ }, (args) =>
      /[\\/]node_modules[\\/]mqtt[\\/]/.test(args.importer)
        ? { path: args.path, namespace: 'left-out' }
        : undefined,
    )
    b.onLoad({ filter: /.*/, namespace: 'left-out' }, (args) => ({
      contents: [
        `const fail = () => { throw new Error(${JSON.stringify(`edge-gateway is built without the package ${args.path} (scripts/bundle.mjs): its cloud link speaks mqtts, not MQTT over WebSocket`)}) }`,
        "module.exports = new Proxy(fail, { get: (_, key) => (key === '__esModule' || typeof key === 'symbol' ? undefined : fail()) })",
      ].join('\n'),
      loader: 'js',
    }))
  },
}

await rm(outdir, { recursive: true, force: true })
const result = await build({
  absWorkingDir: root,
  entryPoints: { 'edge-gateway': 'dist/cli/main.js' },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  chunkNames: 'chunks/[name]-[hash]',
  external: ['pino-pretty'],
  // rxjs's `node` export is its CommonJS build, which a bundle must carry and run whole; its
  // ES module build (the same code, `sideEffects: false`) lets esbuild keep only the operators
  // the bridge uses.
  alias: { rxjs: './node_modules/rxjs/dist/esm/index.js' },
  // CommonJS packages in the bundle (aedes, mqtt-packet, node-forge...) call require() for
  // Node's own modules; an ES module has no require, so each file gets one.
  banner: {
    js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
  },
  sourcemap: 'linked',
  sourcesContent: true,
  legalComments: 'linked',
  logLevel: 'warning',
  // Whitespace and comments out, syntax shortened; names are kept (stack traces name functions,
  // and NODE_OPTIONS=--enable-source-maps maps their positions back to the .ts sources).
  // V8 keeps every loaded file's text for as long as the process runs, and a file with one
  // character past U+00FF left in a comment (zod's, mqtt's, aedes') is kept at two bytes per
  // character: minified, the text a start keeps is about 2 MiB instead of 5.7, all one-byte.
  minifyWhitespace: true,
  minifySyntax: true,
  metafile: true,
  plugins: [unusedCodeOut, debugOffWhenUnset(root), packageSourceMapsOff],
})

/** The npm package an input path is in (`@scope/name` or `name`), or undefined for the project's own. */
function packageOf(path) {
  return /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(path)?.[1]
}

// dist/bin/contents.json: what each output file holds (npm packages and their files, and the
// project's own compiled modules), for an audit of what runs and for test/cli/import-graph.test.ts, which
// maps the chunks a command loads back to the packages in them.
const outputs = Object.entries(result.metafile.outputs).filter(([file]) => file.endsWith('.js'))
const contents = {}
for (const [file, output] of outputs) {
  const packages = new Set()
  const packageFiles = []
  const project = []
  for (const input of Object.keys(output.inputs)) {
    const name = packageOf(input)
    if (name !== undefined) {
      packages.add(name)
      packageFiles.push(input.replace(/^.*node_modules\//, ''))
    } else project.push(input.replace(/^dist\//, ''))
  }
  contents[file.replace(/^dist\/bin\//, '')] = {
    bytes: output.bytes,
    packages: [...packages].sort(),
    packageFiles: packageFiles.sort(),
    project: project.sort(),
  }
}
await writeFile(`${outdir}/contents.json`, `${JSON.stringify(contents, null, 1)}\n`)
const bytes = outputs.reduce((sum, [, out]) => sum + out.bytes, 0)
const inputs = Object.keys(result.metafile.inputs).length
// On stderr: `npm pack --json` runs this (prepack), and its stdout must be the JSON alone.
console.error(
  `bundle: ${inputs} files into ${outputs.length} in dist/bin (${(bytes / 1048576).toFixed(1)} MiB)`,
)
