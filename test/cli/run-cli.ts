import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** The built CLI, as a user runs it after `npm run build`. */
export const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url))

export function assertBuilt(): void {
  if (!existsSync(CLI))
    throw new Error(`${CLI} is missing: run \`npm run build\` first (\`npm test\` does it)`)
}

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs the CLI to completion (killed by PID after timeoutMs). */
export function runCli(args: string[], timeoutMs = 20_000): Promise<CliResult> {
  assertBuilt()
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
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
  assertBuilt()
  return spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
}
