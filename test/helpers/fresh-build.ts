import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Where the sources, the build inputs and the build output are. */
export interface BuildLayout {
  root: string
  /** Folders (relative to root) whose `.ts` files are compiled into outDir, same relative path. */
  sourceDirs: readonly string[]
  /** Files (relative to root) that change the build when they change: tsconfig, package.json. */
  inputFiles: readonly string[]
  /** Relative to root. */
  outDir: string
  /**
   * The bundle made from outDir after each compile (scripts/bundle.mjs), relative to root: it
   * must be at least as new as the oldest compiled file, or it bundles an earlier compile.
   */
  bundle?: string
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** The project's layout: the folders `tsconfig.build.json` compiles, into `dist/`. */
export function projectLayout(root = ROOT): BuildLayout {
  const buildConfig = JSON.parse(readFileSync(join(root, 'tsconfig.build.json'), 'utf8')) as {
    include?: unknown
  }
  const include = buildConfig.include
  if (!Array.isArray(include) || !include.every((dir): dir is string => typeof dir === 'string')) {
    throw new Error(
      `Expected tsconfig.build.json to list the source folders in "include", got ${JSON.stringify(include)}`,
    )
  }
  return {
    root,
    sourceDirs: include,
    // The bundle carries the dependencies: a changed lock file means other code in it.
    inputFiles: [
      'tsconfig.json',
      'tsconfig.build.json',
      'package.json',
      'package-lock.json',
      'scripts/bundle.mjs',
      'scripts/bundle-plugins.mjs',
    ],
    outDir: 'dist',
    bundle: BUNDLE,
  }
}

/** The CLI as it is installed and run: the bundle `npm run build` makes (package.json `bin`). */
export const BUNDLE = 'dist/bin/edge-gateway.js'

function tsFiles(dir: string): string[] {
  const found: string[] = []
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) found.push(...tsFiles(path))
    else if (entry.isFile() && entry.name.endsWith('.ts')) found.push(path)
  }
  return found
}

function mtimeOf(path: string): number | undefined {
  try {
    return statSync(path).mtimeMs
  } catch {
    return undefined
  }
}

/**
 * Why the build output cannot be trusted to be the sources as they are now, or null: a source
 * without its compiled `.js`, or a source or build input changed after the oldest compiled file
 * was written (`tsc` rewrites every output on each build, so the oldest one dates the build).
 */
export function staleBuildProblem(layout: BuildLayout = projectLayout()): string | null {
  const { root, outDir } = layout
  let newestInput: { file: string; mtimeMs: number } | undefined
  let oldestOutput: { file: string; mtimeMs: number } | undefined
  const input = (file: string, mtimeMs: number) => {
    if (newestInput === undefined || mtimeMs > newestInput.mtimeMs) newestInput = { file, mtimeMs }
  }
  for (const file of layout.inputFiles) {
    const mtimeMs = mtimeOf(join(root, file))
    if (mtimeMs !== undefined) input(file, mtimeMs)
  }
  for (const dir of layout.sourceDirs) {
    for (const path of tsFiles(join(root, dir))) {
      const source = relative(root, path)
      input(source, statSync(path).mtimeMs)
      if (source.endsWith('.d.ts')) continue
      const output = join(outDir, source.replace(/\.ts$/, '.js'))
      const mtimeMs = mtimeOf(join(root, output))
      if (mtimeMs === undefined) {
        return `${output} is missing (the build of ${source}): run \`npm run build\` first (\`npm test\` does it)`
      }
      if (oldestOutput === undefined || mtimeMs < oldestOutput.mtimeMs)
        oldestOutput = { file: output, mtimeMs }
    }
  }
  if (oldestOutput === undefined) {
    return `${outDir}/ holds no build of ${layout.sourceDirs.join(', ')}: run \`npm run build\` first`
  }
  if (newestInput !== undefined && newestInput.mtimeMs > oldestOutput.mtimeMs) {
    return (
      `${outDir}/ is older than the sources: ${newestInput.file} changed after the build (${oldestOutput.file} predates it), ` +
      'so this test would run stale code; run `npm run build` first (`npm test` does it)'
    )
  }
  if (layout.bundle !== undefined) {
    const bundled = mtimeOf(join(root, layout.bundle))
    if (bundled === undefined) {
      return `${layout.bundle} is missing (the bundle of ${outDir}/cli/main.js): run \`npm run build\` first (\`npm test\` does it)`
    }
    if (bundled < oldestOutput.mtimeMs) {
      return (
        `${layout.bundle} is older than ${oldestOutput.file}: it bundles an earlier compile, ` +
        'so this test would run stale code; run `npm run build` first (`npm test` does it)'
      )
    }
  }
  return null
}

/** Throws unless the build output matches the sources; every test that runs code from dist/ calls it first. */
export function assertFreshBuild(layout?: BuildLayout): void {
  const problem = staleBuildProblem(layout)
  if (problem !== null) throw new Error(problem)
}
