import { type ChildProcess, spawn } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import { findBinary } from './binaries.js'
import { exitOf, hasExited, killOnExit, LineTail, onLines, signalPid, terminate } from './processes.js'

export const STRACE_HINT = 'install it with `apt-get install strace` (scripts/install-test-deps.sh does)'

const children = new Set<ChildProcess>()
killOnExit(children)

/** Absolute path of strace; throws `strace not found: install it with \`apt-get install strace\`` without it. */
export function findStrace(): Promise<string> {
  return findBinary('strace', STRACE_HINT)
}

function track(child: ChildProcess, output: LineTail): void {
  children.add(child)
  onLines(child.stdout, (line) => output.push(line))
  onLines(child.stderr, (line) => output.push(line))
  child.once('error', (err) => output.push(`spawn error: ${err.message}`))
  child.once('exit', () => children.delete(child))
}

/**
 * Starts `command` under strace (`strace ARGS -- COMMAND...`); its stdout and stderr are the
 * command's. Stop it with `stopTraced` (a killed strace would leave the command running).
 */
export async function straceCommand(args: string[], command: string[]): Promise<ChildProcess> {
  const child = spawn(await findStrace(), [...args, '--', ...command], { stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

/** SIGKILLs, by PID, the command strace started (its children by /proc) and waits for strace to end. */
export async function stopTraced(strace: ChildProcess): Promise<void> {
  if (hasExited(strace) || strace.pid === undefined) return
  const tasks = await readdir(`/proc/${strace.pid}/task`).catch(() => [] as string[])
  for (const task of tasks) {
    const list = await readFile(`/proc/${strace.pid}/task/${task}/children`, 'utf8').catch(() => '')
    for (const pid of list.split(' ').filter(Boolean)) signalPid(Number(pid), 'SIGKILL')
  }
  await exitOf(strace)
}

/**
 * strace attached to a running process (`strace -p PID -f ...`), for example to
 * inject faults into some of its system calls; `detach()` ends the tampering
 * and leaves the process running.
 */
export class StraceAttachment {
  readonly #child: ChildProcess

  private constructor(child: ChildProcess) {
    this.#child = child
  }

  /** Attaches to every thread of `pid` with `args`; resolves once strace says it attached. */
  static async attach(pid: number, args: string[]): Promise<StraceAttachment> {
    const strace = await findStrace()
    const output = new LineTail()
    const child = spawn(strace, ['-p', String(pid), '-f', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    track(child, output)
    const attachment = new StraceAttachment(child)
    const deadline = Date.now() + 10_000
    while (!output.last(50).some((line) => line.includes(`Process ${pid} attached`))) {
      if (hasExited(child) || Date.now() > deadline) {
        await terminate(child)
        throw new Error(`strace did not attach to ${pid}:\n${output.last(20).join('\n')}`)
      }
      await new Promise((r) => setTimeout(r, 20))
    }
    return attachment
  }

  /** Detaches (SIGTERM to strace by PID): the process goes on untouched. */
  async detach(): Promise<void> {
    signalPid(this.#child.pid, 'SIGTERM')
    await exitOf(this.#child)
  }
}
