/**
 * Watching the gateway from outside, as an operator would: resident memory
 * from /proc/<pid>/status every 100 ms, lines in its log file, and its own
 * status file (<stateDir>/status.json: queue depth, cloud link).
 */
import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs'
import { statusKb } from '../proc-stats.mjs'
import { sleep } from './wire.mjs'

/** VmRSS every `everyMs` (kB, with performance.now() times) until stopped. */
export function sampleRss(pid, everyMs = 100) {
  const samples = []
  const timer = setInterval(() => {
    const kb = statusKb(pid, 'VmRSS')
    if (kb !== null) samples.push({ t: performance.now(), kb })
  }, everyMs)
  return {
    samples,
    stop: () => clearInterval(timer),
    /** Samples taken in [from, to). */
    between(from, to = Number.POSITIVE_INFINITY) {
      return samples.filter((s) => s.t >= from && s.t < to).map((s) => s.kb)
    },
  }
}

export const maxOf = (xs) => (xs.length ? xs.reduce((a, b) => Math.max(a, b), 0) : null)
export function medianOf(xs) {
  if (xs.length === 0) return null
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}

/** Counts the lines appended to `file` since the last call. */
export function logLineCounter(file) {
  let offset = 0
  return () => {
    let fd
    try {
      fd = openSync(file, 'r')
    } catch {
      return 0
    }
    try {
      const size = fstatSync(fd).size
      let lines = 0
      const buf = Buffer.allocUnsafe(1 << 20)
      while (offset < size) {
        const n = readSync(fd, buf, 0, Math.min(buf.length, size - offset), offset)
        if (n <= 0) break
        for (let i = 0; i < n; i++) if (buf[i] === 10) lines++
        offset += n
      }
      return lines
    } finally {
      closeSync(fd)
    }
  }
}

/** The soft and hard limits on open files of a process (`self` or a PID), from /proc; null if unreadable. */
export function openFileLimits(pid = 'self') {
  try {
    const line = readFileSync(`/proc/${pid}/limits`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'))
    const [soft, hard] = line.slice('Max open files'.length).trim().split(/\s+/)
    const value = (x) => (x === 'unlimited' ? null : Number(x))
    return { soft: value(soft), hard: value(hard) }
  } catch {
    return null
  }
}

/** The gateway's status file, or null (not written yet, or being replaced). */
export function readStatus(file) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'))
  } catch {
    return null
  }
}

export const queueDepth = (status) => status?.bridge?.queue?.depth ?? null
export const linkStatus = (status) => status?.bridge?.link?.status ?? null

/**
 * Waits until the gateway's queue holds at most `idleDepth` messages (the
 * legitimate devices' own in-flight ones), while it keeps shrinking: gives up
 * when it reached no new low for `stallMs`, or after `maxMs`.
 */
export async function waitDrained(statusFile, { maxMs, stallMs, idleDepth = 20 }) {
  const started = performance.now()
  let best = Number.POSITIVE_INFINITY
  let bestAt = started
  let depth = null
  while (performance.now() - started < maxMs) {
    depth = queueDepth(readStatus(statusFile))
    if (depth !== null && depth <= idleDepth)
      return { drained: true, depth, ms: Math.round(performance.now() - started) }
    if (depth !== null && depth < best) {
      best = depth
      bestAt = performance.now()
    }
    if (performance.now() - bestAt > stallMs) break
    await sleep(1_000)
  }
  return { drained: false, depth, ms: Math.round(performance.now() - started) }
}
