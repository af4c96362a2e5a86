import { type ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { mintLabPki } from '../../pki/index.js'
import { assertFreshBuild, BUNDLE } from '../helpers/fresh-build.js'
import { freePort } from '../helpers/ports.js'
import { onLines } from '../helpers/processes.js'
import { waitUntil } from '../integration/harness.js'

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

/** Starts the CLI and hands back the child, for long-running commands; `env` is added to ours. */
export function spawnCli(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, [builtCli(), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  })
}

/** A running `edge-gateway start` and the JSON lines it has logged so far (other lines as `{ msg }`). */
export interface StartedGateway {
  child: ChildProcess
  logs: Array<Record<string, unknown>>
  /** The same lines as written, for what parsing hides (a key written twice). */
  lines: string[]
}

/**
 * `edge-gateway start --config FILE` as a user runs it, its log lines collected; resolves once it
 * logs `edge gateway started`. The caller stops it (terminate(child)).
 */
export async function startGatewayCli(
  configFile: string,
  timeoutMs = 15_000,
  env: Record<string, string> = {},
): Promise<StartedGateway> {
  const child = spawnCli(['start', '--config', configFile], env)
  const logs: Array<Record<string, unknown>> = []
  const lines: string[] = []
  onLines(child.stdout, (line) => {
    lines.push(line)
    try {
      logs.push(JSON.parse(line) as Record<string, unknown>)
    } catch {
      logs.push({ msg: line })
    }
  })
  await waitUntil(() => logs.some((l) => l.msg === 'edge gateway started'), timeoutMs, 'gateway start')
  return { child, logs, lines }
}

/**
 * A `cloud` section for a cloud that is not there (a free port nobody listens on, a lab PKI made in
 * `<dir>/cloud-pki`): the LAN side runs and reloads without it, and QoS 1 messages wait in the
 * queue, which acknowledges them.
 */
export async function absentCloud(dir: string): Promise<Record<string, unknown>> {
  const pki = await mintLabPki(join(dir, 'cloud-pki'))
  return {
    host: '127.0.0.1',
    port: await freePort(),
    servername: 'localhost',
    caFile: pki.caFile,
    certFile: pki.clientCertFile,
    keyFile: pki.clientKeyFile,
    reconnect: { initialDelayMs: 1000, maxDelayMs: 5000 },
    topics: [{ local: 'devices/', cloud: 'gw/' }],
  }
}
