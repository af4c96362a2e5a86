import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { assertFreshBuild, BUNDLE } from '../helpers/fresh-build.js'

/**
 * The built CLI as a user runs it after `npm run build` (the bundle package.json's `bin` names);
 * not exported: spawners go through `builtCli()`.
 */
const CLI = fileURLToPath(new URL(`../../${BUNDLE}`, import.meta.url))

/** tsc's compiled CLI, which the bundle is made from: the import-graph test traces it module by module. */
const COMPILED = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url))

/** Throws unless dist/ holds a build of the sources as they are now (test/helpers/fresh-build.ts). */
export function assertBuilt(): void {
  assertFreshBuild()
}

/** The CLI's path, once dist/ is known to match the sources: what every spawner of the CLI runs. */
export function builtCli(): string {
  assertBuilt()
  return CLI
}

/** The compiled (unbundled) CLI's path, once dist/ is known to match the sources. */
export function compiledCli(): string {
  assertBuilt()
  return COMPILED
}

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs the CLI to completion (killed by PID after timeoutMs). */
export function runCli(args: string[], timeoutMs = 20_000): Promise<CliResult> {
  const cli = builtCli()
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c
    })
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.once('error', reject)
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

/** Starts the CLI and hands back the child, for long-running commands. */
export function spawnCli(args: string[]): ChildProcess {
  return spawn(process.execPath, [builtCli(), ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
}
