import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { builtCli, compiledCli } from '../../cli/run-cli.js'
import { onLines, terminate } from '../processes.js'
import { makeTempDir, removeDir } from '../tmp.js'

const REGISTER = fileURLToPath(new URL('./register.mjs', import.meta.url))
const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

/** One module the traced process loaded, and the module that loaded it first (null: the entry point). */
export interface LoadedModule {
  url: string
  parent: string | null
}

export interface LoadTrace {
  /** Every module loaded, once each, in the order first seen. */
  modules: LoadedModule[]
  /** Whether the CommonJS modules were recorded (they are only at a normal exit, not at a kill). */
  commonJsRecorded: boolean
  code: number | null
  stdout: string
  stderr: string
}

export interface TraceOptions {
  /** Stop the process (SIGTERM) once a stdout line contains this; otherwise wait until it exits. */
  stopAfter?: string
  timeoutMs?: number
  /**
   * Which CLI: tsc's output module by module (`compiled`, the default: a trace names every
   * project file and package), or the bundle users run (`bundle`: chunks, see `bundlePackagesLoaded`).
   */
  entry?: 'compiled' | 'bundle'
}

/** Runs the built CLI with the load-trace hook (register.mjs) and reads back what it loaded. */
export async function traceCli(args: string[], options: TraceOptions = {}): Promise<LoadTrace> {
  const cli = options.entry === 'bundle' ? builtCli() : compiledCli()
  const dir = await makeTempDir('edge-gw-load-trace-')
  const file = join(dir, 'trace.jsonl')
  try {
    const child = spawn(process.execPath, ['--import', REGISTER, cli, ...args], {
      env: { ...process.env, LOAD_TRACE_FILE: file },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    let stopping = false
    onLines(child.stdout, (line) => {
      stdout += `${line}\n`
      if (!stopping && options.stopAfter !== undefined && line.includes(options.stopAfter)) {
        stopping = true
        void terminate(child)
      }
    })
    onLines(child.stderr, (line) => {
      stderr += `${line}\n`
    })
    const timer = setTimeout(() => {
      stopping = true
      void terminate(child, 1000)
    }, options.timeoutMs ?? 20_000)
    const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)))
    clearTimeout(timer)
    const records = (await readFile(file, 'utf8'))
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line) => JSON.parse(line) as LoadedModule & { cjs?: true })
    const seen = new Map<string, LoadedModule>()
    for (const r of records) if (!seen.has(r.url)) seen.set(r.url, { url: r.url, parent: r.parent })
    return {
      modules: [...seen.values()],
      commonJsRecorded: records.some((r) => r.cjs === true),
      code,
      stdout,
      stderr,
    }
  } finally {
    await removeDir(dir)
  }
}

/** The npm package a module URL is in (`@scope/name` or `name`), or undefined for others. */
export function packageOf(url: string): string | undefined {
  return /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1]
}

/** The packages a trace loaded, sorted. */
export function packagesLoaded(trace: LoadTrace): string[] {
  const names = new Set<string>()
  for (const m of trace.modules) {
    const name = packageOf(m.url)
    if (name !== undefined) names.add(name)
  }
  return [...names].sort()
}

/** A module URL shortened for a message: relative to the project, node: as it is. */
function short(url: string): string {
  if (!url.startsWith('file:')) return url
  const path = fileURLToPath(url)
  return path.startsWith(ROOT) ? path.slice(ROOT.length) : path
}

/** `module <- parent <- ... <- entry point`: how a module came to be loaded. */
export function importChain(trace: LoadTrace, url: string): string {
  const parents = new Map(trace.modules.map((m) => [m.url, m.parent]))
  const chain: string[] = []
  let at: string | null | undefined = url
  while (at !== null && at !== undefined && chain.length < 50) {
    chain.push(short(at))
    at = parents.get(at)
  }
  return chain.join(' <- ')
}

/**
 * One line per way a forbidden module came in: each module that `isForbidden` accepts and whose
 * parent it does not (the entry into that package or folder), with its import chain. Empty when
 * none was loaded.
 */
export function forbiddenLoads(trace: LoadTrace, isForbidden: (url: string) => string | undefined): string[] {
  const out: string[] = []
  for (const m of trace.modules) {
    const what = isForbidden(m.url)
    if (what === undefined) continue
    if (m.parent !== null && isForbidden(m.parent) === what) continue
    out.push(`${what}: ${importChain(trace, m.url)}`)
  }
  return out
}

/** A forbidden-module test for these packages: the package's name, or undefined. */
export function inPackages(names: readonly string[]): (url: string) => string | undefined {
  return (url) => {
    const name = packageOf(url)
    return name !== undefined && names.includes(name) ? name : undefined
  }
}

/** The files a trace loaded from `folder` (relative to the project), as paths relative to it, sorted. */
function filesUnder(trace: LoadTrace, folder: string): string[] {
  const dir = join(ROOT, folder)
  return trace.modules
    .filter((m) => m.url.startsWith('file:') && fileURLToPath(m.url).startsWith(`${dir}/`))
    .map((m) => fileURLToPath(m.url).slice(dir.length + 1))
    .sort()
}

/** The project's own built modules (dist/), as `folder/file.js`. */
export function projectModules(trace: LoadTrace): string[] {
  return filesUnder(trace, 'dist')
}

/** What each file of the bundle holds (dist/bin/contents.json, written by scripts/bundle.mjs). */
interface BundleFile {
  bytes: number
  packages: string[]
  project: string[]
}

/** The bundle's files a trace loaded (relative to dist/bin/), sorted. */
export function bundleFilesLoaded(trace: LoadTrace): string[] {
  return filesUnder(trace, 'dist/bin')
}

/** Files of any kind (project, bundle, packages) a trace loaded: what Node read and compiled. */
export function filesLoaded(trace: LoadTrace): number {
  return trace.modules.filter((m) => m.url.startsWith('file:')).length
}

/**
 * The npm packages a trace of the bundle loaded: those inside the chunks it loaded, by
 * dist/bin/contents.json, and those left outside the bundle (pino-pretty), by their path.
 */
export function bundlePackagesLoaded(trace: LoadTrace): string[] {
  const contents = JSON.parse(readFileSync(join(ROOT, 'dist', 'bin', 'contents.json'), 'utf8')) as Record<
    string,
    BundleFile
  >
  const names = new Set(packagesLoaded(trace))
  for (const file of bundleFilesLoaded(trace)) {
    const held = contents[file]
    if (held === undefined) throw new Error(`dist/bin/contents.json does not list ${file}: rebuild`)
    for (const name of held.packages) names.add(name)
  }
  return [...names].sort()
}
