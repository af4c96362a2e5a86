import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

let ticksPerSecond

function clockTicks() {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(
        execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5_000 }).trim(),
      )
    } catch {
      ticksPerSecond = 100
    }
    if (!Number.isFinite(ticksPerSecond) || ticksPerSecond <= 0) ticksPerSecond = 100
  }
  return ticksPerSecond
}

/** CPU seconds (utime + stime, all threads) a process has used, from /proc/<pid>/stat; null if gone. */
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / clockTicks()
  } catch {
    return null
  }
}

/**
 * Bytes a process caused to be written to storage, from /proc/<pid>/io `write_bytes` (counted as
 * pages are dirtied: a page written again before the kernel wrote it back counts once, a page
 * written again after an fsync cleaned it counts again); null if gone or not readable. The
 * filesystem's journal is written by the kernel's jbd2 thread and is not in it.
 */
export function writeBytes(pid) {
  try {
    const match = /^write_bytes:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))
    return match ? Number(match[1]) : null
  } catch {
    return null
  }
}

/** A field of /proc/<pid>/status in kB (VmHWM: peak resident memory, VmRSS: now); null if gone. */
export function statusKb(pid, field) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)
    return match ? Number(match[1]) : null
  } catch {
    return null
  }
}

/** The machine, for the report: cores and CPU model. */
export function machine() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8')
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown'
  let cores
  try {
    cores = Number(execFileSync('nproc', { encoding: 'utf8', timeout: 5_000 }).trim())
  } catch {
    cores = (cpuinfo.match(/^processor\s*:/gm) ?? []).length
  }
  const memKb = Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0)
  return { cores, model, memoryMiB: Math.round(memKb / 1024), node: process.version }
}
