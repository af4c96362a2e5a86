import { spawn } from 'node:child_process'
import { findBinary, MOSQUITTO_INSTALL_HINT } from './binaries.js'
import { connectionArgs, type MosquittoClientConnection } from './mosquitto-args.js'
import { type Exit, signalPid } from './processes.js'

export interface MosquittoPubOptions extends MosquittoClientConnection {
  topic: string
  message: string
  /** Appended to argv as is (e.g. `['-r']`, `['-V', 'mqttv5']`). */
  extraArgs?: string[]
  /** SIGKILL by PID after this long; default 10 000. */
  timeoutMs?: number
}

export interface MosquittoPubResult {
  /** Exit code; null when killed (see `timedOut`). */
  code: number | null
  stdout: string
  stderr: string
  timedOut: boolean
}

/** Runs the real `mosquitto_pub` once (argv, no shell) and reports how it exited. */
export async function mosquittoPub(opts: MosquittoPubOptions): Promise<MosquittoPubResult> {
  const binary = await findBinary('mosquitto_pub', MOSQUITTO_INSTALL_HINT)
  const args = [...connectionArgs(opts), '-t', opts.topic, '-m', opts.message, ...(opts.extraArgs ?? [])]
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk
  })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk
  })
  // 'close' (not 'exit') waits for the pipes to drain too.
  const closed = new Promise<Exit>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  )
  const spawnError = new Promise<never>((_, reject) => child.once('error', reject))
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    signalPid(child.pid, 'SIGKILL')
  }, opts.timeoutMs ?? 10_000)
  try {
    const exit = await Promise.race([closed, spawnError])
    return { code: exit.code, stdout, stderr, timedOut }
  } finally {
    clearTimeout(timer)
  }
}
