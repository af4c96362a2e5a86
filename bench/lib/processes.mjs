import { execFileSync, spawn } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'

/** Every process this run started and that is still alive; stopped by PID on exit. */
const started = new Set()

function killStarted() {
  for (const child of started) {
    try {
      process.kill(child.pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
}
process.once('exit', killStarted)
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    killStarted()
    process.exit(130)
  })
}

/** `command args` prefixed with `taskset -c <cpus>` when `cpus` is given. */
function pinned(command, args, cpus) {
  return cpus === undefined ? [command, args] : ['taskset', ['-c', cpus, command, ...args]]
}

function track(child) {
  started.add(child)
  child.once('exit', () => started.delete(child))
  return child
}

/** A server process (mosquitto, the gateway) with stdout and stderr appended to `logFile`. */
export function spawnServer(command, args, { cpus, logFile, cwd, env }) {
  const fd = openSync(logFile, 'a')
  const [cmd, argv] = pinned(command, args, cpus)
  try {
    return track(spawn(cmd, argv, { cwd, stdio: ['ignore', fd, fd], ...(env && { env }) }))
  } finally {
    closeSync(fd)
  }
}

/**
 * A harness script (bench/*.mjs) under this Node with an IPC channel.
 * `request(message, replyType)` sends and resolves with the first reply of that
 * type; a child's `{ type: 'error' }` rejects what is pending.
 */
export function spawnScript(script, { cpus } = {}) {
  const [cmd, argv] = pinned(process.execPath, [script], cpus)
  const child = track(spawn(cmd, argv, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }))
  const waiting = []
  const listeners = []
  child.on('message', (message) => {
    for (const fn of listeners) fn(message)
    if (message?.type === 'error') {
      for (const w of waiting.splice(0)) w.reject(new Error(`${script}: ${message.message}`))
      return
    }
    const index = waiting.findIndex((w) => w.type === message?.type)
    if (index >= 0) waiting.splice(index, 1)[0].resolve(message)
  })
  child.once('exit', (code, signal) => {
    for (const w of waiting.splice(0))
      w.reject(new Error(`${script} exited (code ${code}, signal ${signal})`))
  })
  return {
    child,
    pid: child.pid,
    /** Calls `fn` for every message until the returned function is called. */
    onMessage(fn) {
      listeners.push(fn)
      return () => {
        const at = listeners.indexOf(fn)
        if (at >= 0) listeners.splice(at, 1)
      }
    },
    send(message) {
      if (child.connected) child.send(message)
    },
    request(message, replyType, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const entry = { type: replyType, resolve, reject }
        const timer = setTimeout(() => {
          waiting.splice(waiting.indexOf(entry), 1)
          reject(new Error(`${script}: no '${replyType}' reply to '${message.type}' within ${timeoutMs} ms`))
        }, timeoutMs)
        entry.resolve = (value) => {
          clearTimeout(timer)
          resolve(value)
        }
        entry.reject = (err) => {
          clearTimeout(timer)
          reject(err)
        }
        waiting.push(entry)
        if (child.connected) child.send(message)
        else entry.reject(new Error(`${script} is not running`))
      })
    },
  }
}

export function hasExited(child) {
  return child.exitCode !== null || child.signalCode !== null
}

/**
 * Waits up to `politeMs` for the process to exit by itself (after an `exit`
 * message), then SIGTERM by PID, then SIGKILL after `graceMs`; resolves when it is gone.
 */
export async function stopProcess(child, graceMs = 5_000, politeMs = 0) {
  if (!child || hasExited(child)) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  if (politeMs > 0) {
    let timer
    await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, politeMs)))])
    clearTimeout(timer)
    if (hasExited(child)) return
  }
  child.kill('SIGTERM')
  const timer = setTimeout(() => {
    if (!hasExited(child)) child.kill('SIGKILL')
  }, graceMs)
  await exited
  clearTimeout(timer)
}

/** Moves every thread of a running process to `cpus` (`taskset -a -p -c`). */
export function pinProcess(pid, cpus) {
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore', timeout: 5_000 })
}
