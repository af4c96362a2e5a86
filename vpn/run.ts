/**
 * The one seam through which `vpn/` runs programs (the only file that imports execa): argv
 * arrays, never a shell; secrets on stdin, never argv; a timeout on every call; output redacted
 * before it reaches an error or a log; failures as typed `VpnError`s.
 */
import { closeSync, openSync } from 'node:fs'
import { type Options as ExecaOptions, execa } from 'execa'
import type { Logger } from '../core/logger.js'
import { Daemon, type DaemonOptions, feedLines } from './daemon.js'
import { VpnError } from './errors.js'
import { failureError } from './failure.js'
import { checkNetnsName } from './names.js'
import { keyTokens, redact } from './redact.js'

export type { Daemon, DaemonExit, DaemonOptions } from './daemon.js'

export const DEFAULT_TIMEOUT_MS = 10_000
const MAX_TIMEOUT_MS = 600_000
const MAX_OUTPUT_BYTES = 4 * 1024 * 1024

/** What every function that runs a command accepts. */
export interface CommandOptions {
  /** Run inside this network namespace (`ip netns exec <netns> ...`); for tests and the lab. */
  netns?: string
  /** Extra environment (merged over the process's); tests pass a PATH that lacks a tool. */
  env?: Readonly<Record<string, string>>
  logger?: Logger
}

export interface RunOptions extends CommandOptions {
  /** Written to the command's stdin. Treated as secret: nothing in it shows in errors. */
  input?: string
  /** Killed after this many ms (default 10 000). */
  timeoutMs?: number
  /** More strings to redact from errors (keys the command may echo back). */
  secrets?: readonly string[]
  /** Aborting kills the command. */
  signal?: AbortSignal
}

export interface RunResult {
  stdout: string
  stderr: string
}

function display(file: string, argv: readonly string[]): string {
  return [file, ...argv].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ')
}

function wrap(cmd: string, args: readonly string[], netns: string | undefined): [string, string[]] {
  if (netns === undefined) return [cmd, [...args]]
  return ['ip', ['netns', 'exec', checkNetnsName(netns), cmd, ...args]]
}

function checkTimeout(timeoutMs: number): number {
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0 || timeoutMs > MAX_TIMEOUT_MS) {
    throw new VpnError(
      'VPN_ERR_BAD_CONFIG',
      `Expected the timeout to be an integer from 1 to ${MAX_TIMEOUT_MS} ms, got ${JSON.stringify(timeoutMs)}`,
    )
  }
  return timeoutMs
}

/** Refuses, before anything runs, to put a known secret on a command line. */
function checkArgs(cmd: string, args: readonly string[], secrets: readonly string[]): void {
  for (const secret of secrets) {
    if (secret.length >= 8 && [cmd, ...args].some((a) => a.includes(secret))) {
      throw new VpnError(
        'VPN_ERR_SECRET_IN_ARGS',
        `Refusing to run \`${cmd}\` with a secret in its arguments; secrets go on stdin`,
      )
    }
  }
}

function secretsOf(options: RunOptions): string[] {
  return [...(options.secrets ?? []), ...(options.input === undefined ? [] : keyTokens(options.input))]
}

/**
 * Runs `cmd args` and resolves with its output, or rejects with a `VpnError`: a missing program
 * names its Debian package, EPERM names the capability, a timeout says so. stdout is returned,
 * never logged and never put in an error (it may hold keys: `wg genkey`, `wg show dump`).
 */
export async function run(
  cmd: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const timeoutMs = checkTimeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS)
  const secrets = secretsOf(options)
  checkArgs(cmd, args, secrets)
  const [file, argv] = wrap(cmd, args, options.netns)
  const commandLine = display(file, argv)
  const started = performance.now()
  const result = await execa(file, argv, {
    ...(options.input === undefined ? { stdin: 'ignore' as const } : { input: options.input }),
    ...(options.signal === undefined ? {} : { cancelSignal: options.signal }),
    env: options.env ?? {},
    timeout: timeoutMs,
    forceKillAfterDelay: 2000,
    maxBuffer: MAX_OUTPUT_BYTES,
    stripFinalNewline: false,
    reject: false,
  })
  const ms = Math.round(performance.now() - started)
  const stderr = redact(typeof result.stderr === 'string' ? result.stderr : '', secrets)
  options.logger?.debug({ command: commandLine, exitCode: result.exitCode, ms }, 'vpn command')
  if (!result.failed) return { stdout: String(result.stdout), stderr }
  if (result.isCanceled) {
    throw new VpnError('VPN_ERR_COMMAND_FAILED', `\`${commandLine}\` was cancelled`, {
      details: { command: commandLine },
    })
  }
  const error = failureError({
    program: cmd,
    commandLine,
    netns: options.netns,
    spawnCode: result.code,
    exitCode: result.exitCode,
    signal: result.signal,
    timedOut: result.timedOut,
    timeoutMs,
    stderr,
    pathEnv: options.env?.PATH ?? process.env.PATH,
  })
  options.logger?.debug(
    { command: commandLine, code: error.code, stderr: error.details?.stderr },
    'vpn command failed',
  )
  throw error
}

/**
 * Starts a long-running program (`wireguard-go -f wg0`, or a server in a test namespace) and
 * returns once it has started, with its PID. With `netns`, `ip netns exec` replaces itself with
 * the program, so the PID is the program's. Rejects with a `VpnError` if it cannot start.
 */
export async function spawnDaemon(
  cmd: string,
  args: readonly string[],
  options: DaemonOptions = {},
): Promise<Daemon> {
  checkArgs(cmd, args, options.secrets ?? [])
  const [file, argv] = wrap(cmd, args, options.netns)
  const commandLine = display(file, argv)
  const detached = options.detached ?? false
  let output: 'pipe' | 'ignore' | number = detached ? 'ignore' : 'pipe'
  // The log file is opened here (0600, appended) and its descriptor handed to the child: with
  // `{ file }` execa would pipe the output through this process, which then could not exit before
  // a detached child does (`edge-gateway vpn up` would hang).
  const logFd = options.logFile === undefined ? undefined : openSync(options.logFile, 'a', 0o600)
  if (logFd !== undefined) output = logFd
  // execa's types list only descriptors 3 to 9, but it passes any descriptor on to the child.
  const stdio = output as ExecaOptions['stdout']
  const execaOptions: ExecaOptions = {
    env: options.env ?? {},
    stdin: 'ignore',
    stdout: stdio,
    stderr: stdio,
    buffer: false,
    reject: false,
    detached,
    cleanup: !detached,
  }
  const start = () => execa(file, argv, execaOptions)
  let subprocess: ReturnType<typeof start>
  try {
    subprocess = start()
  } finally {
    // The child has its own copy of the descriptor.
    if (logFd !== undefined) closeSync(logFd)
  }
  const exited = subprocess.then((r) => ({ code: r.exitCode ?? null, signal: r.signal ?? null }))
  if (subprocess.pid === undefined) {
    const result = await subprocess
    throw failureError({
      program: cmd,
      commandLine,
      netns: options.netns,
      spawnCode: result.code ?? 'ENOENT',
      exitCode: undefined,
      signal: undefined,
      timedOut: false,
      timeoutMs: 0,
      stderr: '',
      pathEnv: options.env?.PATH ?? process.env.PATH,
    })
  }
  const daemon = new Daemon(subprocess.pid, cmd, commandLine, exited, options)
  feedLines(subprocess.stdout, (line) => daemon.pushLine(line))
  feedLines(subprocess.stderr, (line) => daemon.pushLine(line))
  if (detached) subprocess.unref()
  options.logger?.debug({ command: commandLine, pid: daemon.pid }, 'vpn daemon started')
  return daemon
}
