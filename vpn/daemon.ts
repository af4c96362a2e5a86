/** A long-running process started through `spawnDaemon` (in run.ts, the execa seam). */
import { readFileSync } from 'node:fs'
import type { VpnError } from './errors.js'
import { failureError } from './failure.js'
import { redact } from './redact.js'
import type { CommandOptions } from './run.js'

export interface DaemonOptions extends CommandOptions {
  /** Start in its own process group and let this process exit without it (`edge-gateway vpn up`). */
  detached?: boolean
  /** Append stdout and stderr to this file (mode 0600) instead of keeping them in memory. */
  logFile?: string
  /** Strings to redact from the output. */
  secrets?: readonly string[]
  /** Each line of output, redacted. */
  onLine?: (line: string) => void
}

export interface DaemonExit {
  code: number | null
  signal: string | null
}

const TAIL_LINES = 100

/** A long-running process started by `spawnDaemon`, stopped by its PID. */
export class Daemon {
  readonly pid: number
  readonly commandLine: string
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<DaemonExit>
  readonly #program: string
  readonly #options: DaemonOptions
  readonly #lines: string[] = []
  #exit: DaemonExit | null = null

  constructor(
    pid: number,
    program: string,
    commandLine: string,
    exited: Promise<DaemonExit>,
    options: DaemonOptions,
  ) {
    this.pid = pid
    this.#program = program
    this.commandLine = commandLine
    this.#options = options
    this.exited = exited.then((exit) => {
      this.#exit = exit
      return exit
    })
  }

  /** @internal */
  pushLine(line: string): void {
    const clean = redact(line, this.#options.secrets)
    this.#lines.push(clean)
    if (this.#lines.length > TAIL_LINES) this.#lines.shift()
    this.#options.onLine?.(clean)
  }

  hasExited(): boolean {
    return this.#exit !== null
  }

  /** The last lines of output (redacted). */
  output(): string[] {
    return [...this.#lines]
  }

  /** The error that explains why the process exited (a missing program, EPERM, no /dev/net/tun, ...). */
  failure(): VpnError {
    return failureError({
      program: this.#program,
      commandLine: this.commandLine,
      netns: this.#options.netns,
      spawnCode: undefined,
      exitCode: this.#exit?.code ?? undefined,
      signal: this.#exit?.signal ?? undefined,
      timedOut: false,
      timeoutMs: 0,
      stderr: [...this.#lines, ...this.#logTail()].join('\n'),
      pathEnv: this.#options.env?.PATH ?? process.env.PATH,
    })
  }

  #logTail(): string[] {
    if (this.#options.logFile === undefined) return []
    try {
      const text = readFileSync(this.#options.logFile, 'utf8').slice(-4096)
      return redact(text, this.#options.secrets).split('\n').slice(-20)
    } catch {
      return []
    }
  }

  /** Sends `signal` to the process by PID; a process that is already gone is fine. */
  signal(signal: NodeJS.Signals): void {
    if (this.#exit !== null) return
    try {
      process.kill(this.pid, signal)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err
    }
  }

  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. Resolves with how it exited. */
  async stop(graceMs = 5000): Promise<DaemonExit> {
    if (this.#exit !== null) return this.#exit
    this.signal('SIGTERM')
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), graceMs)
    })
    const first = await Promise.race([this.exited, late])
    clearTimeout(timer)
    if (first !== 'late') return first
    this.signal('SIGKILL')
    return this.exited
  }
}

/** Calls `onLine` for each line of `stream`. */
export function feedLines(
  stream: NodeJS.ReadableStream | null | undefined,
  onLine: (line: string) => void,
): void {
  if (stream === null || stream === undefined) return
  let pending = ''
  stream.setEncoding('utf8')
  stream.on('data', (chunk: string) => {
    pending += chunk
    const parts = pending.split('\n')
    pending = parts.pop() ?? ''
    for (const line of parts) onLine(line)
    if (pending.length > 64 * 1024) pending = pending.slice(-1024)
  })
  stream.on('end', () => {
    if (pending !== '') onLine(pending)
    pending = ''
  })
}
