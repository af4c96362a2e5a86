import { readFileSync } from 'node:fs'
import { mkdir, open, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { writeFileDurably } from './durable-file.js'
import { EdgeGatewayError } from './errors.js'

/**
 * `<stateDir>/gateway.lock`: which gateway process uses the state folder. Two gateways on one
 * folder (a `start` run by hand while the service runs) would open the same queue, nonce journals
 * and tunnel records beside each other: the second refuses to start instead. The record holds
 * the PID and the process's start time (Linux: /proc/<pid>/stat), so a record left by a killed
 * gateway is recognised as stale even when its PID was given to another process since (a reboot).
 */
export class StateLock {
  private constructor(
    private readonly file: string,
    private readonly record: string,
  ) {}

  static async acquire(stateDir: string): Promise<StateLock> {
    await mkdir(stateDir, { recursive: true, mode: 0o700 })
    const file = join(stateDir, 'gateway.lock')
    const record = processRecord()
    try {
      const handle = await open(file, 'wx', 0o600)
      try {
        await handle.writeFile(record)
      } finally {
        await handle.close()
      }
      return new StateLock(file, record)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const pid = otherRunningHolder(await readFile(file, 'utf8').catch(() => ''))
    if (pid !== undefined) {
      throw new EdgeGatewayError(
        'STATE_ERR_IN_USE',
        `${stateDir} is in use by the gateway running as pid ${pid}: one gateway at a time per gateway.stateDir (stop it first, or give this one a state folder of its own)`,
      )
    }
    // Left by a gateway that no longer runs (or by this process, started again): taken over.
    await writeFileDurably(file, record)
    return new StateLock(file, record)
  }

  /** Removes the record, if it is still this process's. */
  async release(): Promise<void> {
    const now = await readFile(this.file, 'utf8').catch(() => '')
    if (now === this.record) await rm(this.file, { force: true })
  }
}

/** This process as a record: `<pid> <start time>\n` (`-` where the start time cannot be read). */
export function processRecord(): string {
  return `${process.pid} ${startTime(process.pid) ?? '-'}\n`
}

/** Field 22 of /proc/<pid>/stat (clock ticks since boot); undefined where there is no /proc. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) is in parentheses and may hold spaces: count after its end.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}

/** Whether a process with this PID exists (EPERM: it does, under another user). */
export function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * The PID a record (processRecord, or a PID alone from earlier versions) names when that is
 * another process and it still runs; undefined for no record, this process, or one that is gone.
 */
export function otherRunningHolder(record: string): number | undefined {
  const pid = recordedPid(record)
  if (pid === undefined || pid === process.pid) return undefined
  return sameProcessRuns(pid, record) ? pid : undefined
}

/** The PID a record names; undefined when it names none. */
export function recordedPid(record: string): number | undefined {
  const pid = Number(record.trim().split(' ')[0])
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined
}

/**
 * Whether the process a record names still runs: its PID, with the same start time when the
 * record has one, so a PID given to another process since is not taken for it.
 */
function sameProcessRuns(pid: number, record: string): boolean {
  if (!processRuns(pid)) return false
  const recorded = record.trim().split(' ')[1]
  const now = startTime(pid)
  return recorded === undefined || recorded === '-' || now === undefined || recorded === now
}
