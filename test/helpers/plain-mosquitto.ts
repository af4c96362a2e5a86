import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { userInfo } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { findBinary } from './binaries.js'
import { freePort } from './ports.js'
import { hasExited, killOnExit, LineTail, onLines, terminate } from './processes.js'

export const MOSQUITTO_HINT = 'install it with `apt-get install mosquitto`'
const PORT_ATTEMPTS = 3
const PROBES = 100
const PROBE_INTERVAL_MS = 50

const children = new Set<ChildProcess>()
killOnExit(children)

export interface PlainMosquittoOptions {
  /** Holds mosquitto.conf and mosquitto.log. */
  dir: string
  passwordFile: string
  aclFile: string
}

/**
 * The real mosquitto on plain TCP (127.0.0.1, a free port) with a
 * password_file and an acl_file, anonymous clients allowed. Always `stop()` it.
 */
export class PlainMosquitto {
  readonly port: number
  readonly logFile: string
  readonly #child: ChildProcess
  readonly #output: LineTail

  private constructor(child: ChildProcess, port: number, logFile: string, output: LineTail) {
    this.#child = child
    this.port = port
    this.logFile = logFile
    this.#output = output
  }

  static async start(opts: PlainMosquittoOptions): Promise<PlainMosquitto> {
    const binary = await findBinary('mosquitto', MOSQUITTO_HINT)
    const logFile = join(opts.dir, 'mosquitto.log')
    const configFile = join(opts.dir, 'mosquitto.conf')
    for (let attempt = 1; ; attempt++) {
      const port = await freePort()
      await writeFile(configFile, plainConfig(port, logFile, opts), { mode: 0o600 })
      const output = new LineTail()
      const child = spawn(binary, ['-c', configFile], { cwd: opts.dir, stdio: ['ignore', 'pipe', 'pipe'] })
      children.add(child)
      onLines(child.stdout, (line) => output.push(line))
      onLines(child.stderr, (line) => output.push(line))
      child.once('error', (err) => output.push(`spawn error: ${err.message}`))
      child.once('exit', () => children.delete(child))
      const broker = new PlainMosquitto(child, port, logFile, output)
      if (await listening(child, port)) return broker
      await terminate(child)
      const tail = broker.tail()
      if (!tail.includes('Address already in use') || attempt >= PORT_ATTEMPTS) {
        throw new Error(`mosquitto did not start listening on 127.0.0.1:${port}.\n${tail}`)
      }
    }
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`
  }

  /** SIGTERM by PID, then SIGKILL if it lingers. */
  async stop(): Promise<void> {
    await terminate(this.#child)
    children.delete(this.#child)
  }

  /** The end of mosquitto.log and of its stdout/stderr, for failure messages. */
  tail(): string {
    let log = ''
    try {
      log = readFileSync(this.logFile, 'utf8').split('\n').slice(-30).join('\n')
    } catch {
      // No log yet.
    }
    return `--- mosquitto.log ---\n${log}\n--- stdout/stderr ---\n${this.#output.last(20).join('\n')}`
  }
}

function plainConfig(port: number, logFile: string, opts: PlainMosquittoOptions): string {
  return [
    'per_listener_settings false',
    // As root, mosquitto 2 would switch to user "mosquitto", who cannot read our 0700 dir.
    `user ${userInfo().username}`,
    'allow_anonymous true',
    `password_file ${opts.passwordFile}`,
    `acl_file ${opts.aclFile}`,
    'persistence false',
    'sys_interval 10',
    `log_dest file ${logFile}`,
    'log_type all',
    `listener ${port} 127.0.0.1`,
    '',
  ].join('\n')
}

async function listening(child: ChildProcess, port: number): Promise<boolean> {
  for (let i = 0; i < PROBES; i++) {
    if (hasExited(child)) return false
    if (await accepts(port)) return !hasExited(child)
    await sleep(PROBE_INTERVAL_MS)
  }
  return false
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    socket.setTimeout(PROBE_INTERVAL_MS * 10)
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
    socket.once('timeout', () => done(false))
  })
}
