import type { ChildProcess } from 'node:child_process'

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

/** Resolves when `child` has exited (at once if it already has). */
/** Longest wait, after a child exits, for its stdout and stderr to be read to the end. */
const OUTPUT_END_MS = 2_000

/**
 * The child's exit, once its piped output has been read to the end: 'exit' can come before the
 * last lines are read ('close' comes after both), and a test that checks the last line right
 * after 'exit' would race it. Bounded: a grandchild holding the pipes open does not hold this.
 */
export async function exitOf(child: ChildProcess): Promise<Exit> {
  const exit: Exit =
    child.exitCode !== null || child.signalCode !== null
      ? { code: child.exitCode, signal: child.signalCode }
      : await new Promise((resolve) => {
          child.once('exit', (code, signal) => resolve({ code, signal }))
        })
  // Only the streams someone reads (a paused, unread pipe would never end).
  const open = [child.stdout, child.stderr].filter(
    (s) => s !== null && !s.readableEnded && !s.destroyed && s.listenerCount('data') > 0,
  )
  if (open.length > 0) {
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      Promise.all(open.map((s) => new Promise((resolve) => s!.once('close', resolve)))),
      new Promise((resolve) => {
        timer = setTimeout(resolve, OUTPUT_END_MS)
      }),
    ])
    clearTimeout(timer)
  }
  return exit
}

export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null
}

/** Sends `signal` to `pid`; a process that is already gone is fine. */
export function signalPid(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return
  try {
    process.kill(pid, signal)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err
  }
}

/**
 * Stops `child` by PID: SIGTERM (plus SIGCONT, in case it is paused), then
 * SIGKILL if it has not exited after `graceMs`. Resolves with how it exited.
 */
export async function terminate(child: ChildProcess, graceMs = 10_000): Promise<Exit> {
  if (hasExited(child)) return exitOf(child)
  signalPid(child.pid, 'SIGTERM')
  signalPid(child.pid, 'SIGCONT')
  let timer: NodeJS.Timeout | undefined
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), graceMs)
  })
  const first = await Promise.race([exitOf(child), timedOut])
  clearTimeout(timer)
  if (first !== 'timeout') return first
  signalPid(child.pid, 'SIGKILL')
  return exitOf(child)
}

/** Calls `onLine` for each complete line of `stream` (a trailing partial line waits for its newline). */
export function onLines(stream: NodeJS.ReadableStream | null, onLine: (line: string) => void): void {
  if (stream === null) return
  let pending = ''
  stream.setEncoding('utf8')
  stream.on('data', (chunk: string) => {
    pending += chunk
    let newline = pending.indexOf('\n')
    while (newline !== -1) {
      onLine(pending.slice(0, newline))
      pending = pending.slice(newline + 1)
      newline = pending.indexOf('\n')
    }
  })
  stream.on('end', () => {
    if (pending !== '') onLine(pending)
    pending = ''
  })
}

/** Keeps the last `max` lines pushed, for error messages. */
export class LineTail {
  readonly #max: number
  readonly #lines: string[] = []

  constructor(max = 200) {
    this.#max = max
  }

  push(line: string): void {
    this.#lines.push(line)
    if (this.#lines.length > this.#max) this.#lines.shift()
  }

  last(count: number): string[] {
    return this.#lines.slice(-count)
  }
}

/** SIGKILLs every child still running when the test process exits, so none outlives a crashed run. */
export function killOnExit(children: ReadonlySet<ChildProcess>): void {
  process.once('exit', () => {
    for (const child of children) if (!hasExited(child)) signalPid(child.pid, 'SIGKILL')
  })
}
