import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { mintLabPki } from '../../pki/lab.js'
import type { LabPki } from '../../pki/types.js'
import { findBinary, MOSQUITTO_INSTALL_HINT } from './binaries.js'
import { type CloudMosquittoConfig, cloudMosquittoConf } from './mosquitto-config.js'
import { freePort } from './ports.js'
import {
  type Exit,
  exitOf,
  hasExited,
  killOnExit,
  LineTail,
  onLines,
  signalPid,
  terminate,
} from './processes.js'

export interface CloudMosquittoOptions {
  /** Holds mosquitto.conf, mosquitto.log and mosquitto.db. */
  dir: string
  caFile: string
  certFile: string
  keyFile: string
  /** Default: a free port. */
  port?: number
  /** Default 127.0.0.1. */
  host?: string
  /** Default false. */
  persistence?: boolean
  /** Lines appended after the listener (so listener options apply to it). */
  extraConfig?: string[]
}

const PROBE_ATTEMPTS = 100
const PROBE_INTERVAL_MS = 50
const LOG_POLL_MS = 20
/** With no port given, a port that someone grabbed between `freePort` and bind gets this many retries. */
const PORT_ATTEMPTS = 3

const children = new Set<ChildProcess>()
const brokers = new Set<CloudMosquitto>()
killOnExit(children)

/**
 * A real mosquitto binary playing the cloud broker: one mutual-TLS listener,
 * clients authenticated by certificate. Started with `CloudMosquitto.start`;
 * always `stop()` it (or call `stopAllMosquittos()` in afterAll).
 */
export class CloudMosquitto {
  readonly host: string
  readonly port: number
  readonly dir: string
  readonly configFile: string
  readonly logFile: string
  readonly #binary: string
  readonly #output = new LineTail()
  #child: ChildProcess | undefined

  private constructor(binary: string, config: CloudMosquittoConfig) {
    this.#binary = binary
    this.host = config.host
    this.port = config.port
    this.dir = config.dir
    this.configFile = join(config.dir, 'mosquitto.conf')
    this.logFile = join(config.dir, 'mosquitto.log')
  }

  static async start(opts: CloudMosquittoOptions): Promise<CloudMosquitto> {
    const binary = await findBinary('mosquitto', MOSQUITTO_INSTALL_HINT)
    const host = opts.host ?? '127.0.0.1'
    for (let attempt = 1; ; attempt++) {
      const config: CloudMosquittoConfig = {
        dir: resolve(opts.dir),
        host,
        port: opts.port ?? (await freePort(host)),
        caFile: resolve(opts.caFile),
        certFile: resolve(opts.certFile),
        keyFile: resolve(opts.keyFile),
        persistence: opts.persistence ?? false,
        extraConfig: opts.extraConfig ?? [],
      }
      const broker = new CloudMosquitto(binary, config)
      await writeFile(broker.configFile, cloudMosquittoConf(config), { mode: 0o600 })
      try {
        await broker.#launch()
        return broker
      } catch (err) {
        const portTaken = err instanceof Error && err.message.includes('Address already in use')
        if (opts.port !== undefined || !portTaken || attempt >= PORT_ATTEMPTS) throw err
      }
    }
  }

  get pid(): number | undefined {
    return this.#child !== undefined && !hasExited(this.#child) ? this.#child.pid : undefined
  }

  get running(): boolean {
    return this.pid !== undefined
  }

  /** SIGTERM by PID and wait for the exit, so mosquitto saves its persistence file. */
  async stop(): Promise<void> {
    const child = this.#child
    if (child === undefined) return
    await terminate(child)
    this.#forget(child)
  }

  /** Stops (if running) and starts again with the same config file and port. */
  async restart(): Promise<void> {
    await this.stop()
    await this.#launch()
  }

  /** Sends `signal` by PID (SIGKILL: a crash, nothing saved). Use `exited()` to wait for the end. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    signalPid(this.pid, signal)
  }

  /** Resolves when the current process exits. */
  async exited(): Promise<Exit> {
    const child = this.#child
    if (child === undefined) return { code: null, signal: null }
    const exit = await exitOf(child)
    this.#forget(child)
    return exit
  }

  /** SIGSTOP: the broker keeps its sockets open but answers nothing (a hung cloud). */
  pause(): void {
    this.kill('SIGSTOP')
  }

  resume(): void {
    this.kill('SIGCONT')
  }

  /** The last `lines` lines of mosquitto.log (what it logged since the first start). */
  logTail(lines = 50): string {
    return this.#logLines().slice(-lines).join('\n')
  }

  #logLines(): string[] {
    try {
      return readFileSync(this.logFile, 'utf8').split('\n').filter(Boolean)
    } catch {
      return []
    }
  }

  /** How many lines mosquitto.log has now; pass it as `since` to `waitForLog` to look only at what comes next. */
  get logLineCount(): number {
    return this.#logLines().length
  }

  /**
   * Resolves with the first log line from index `since` on that matches,
   * polling the file: mosquitto may log a refusal after the refused client has
   * already exited.
   */
  async waitForLog(
    pattern: string | RegExp,
    opts: { since?: number; timeoutMs?: number } = {},
  ): Promise<string> {
    const { since = 0, timeoutMs = 5_000 } = opts
    const matches = (line: string) =>
      typeof pattern === 'string' ? line.includes(pattern) : pattern.test(line)
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const line = this.#logLines().slice(since).find(matches)
      if (line !== undefined) return line
      if (Date.now() >= deadline) {
        throw new Error(
          `Expected mosquitto to log ${String(pattern)} after line ${since} within ${timeoutMs} ms. Log tail:\n${this.logTail(30)}`,
        )
      }
      await sleep(LOG_POLL_MS)
    }
  }

  async #launch(): Promise<void> {
    const since = this.logLineCount
    const child = spawn(this.#binary, ['-c', this.configFile], {
      cwd: this.dir,
      detached: false,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    this.#child = child
    children.add(child)
    brokers.add(this)
    onLines(child.stdout, (line) => this.#output.push(line))
    onLines(child.stderr, (line) => this.#output.push(line))
    child.once('error', (err) => this.#output.push(`spawn error: ${err.message}`))
    child.once('exit', () => children.delete(child))
    try {
      await this.#waitForListener(child, since)
    } catch (err) {
      await terminate(child)
      this.#forget(child)
      throw err
    }
  }

  async #waitForListener(child: ChildProcess, since: number): Promise<void> {
    for (let attempt = 0; attempt < PROBE_ATTEMPTS; attempt++) {
      if (hasExited(child)) break
      // Another process may hold the port (a neighbour's listener): ours is up only once its own
      // log says it runs, and the port accepts.
      const started = this.#logLines()
        .slice(since)
        .some((l) => / running$/.test(l))
      if (started && (await accepts(this.host, this.port))) {
        if (!hasExited(child)) return
        break
      }
      await sleep(PROBE_INTERVAL_MS)
    }
    const why = hasExited(child)
      ? `exited (code ${child.exitCode}, signal ${child.signalCode})`
      : `did not accept TCP connections after ${PROBE_ATTEMPTS} probes ${PROBE_INTERVAL_MS} ms apart`
    throw new Error(
      `mosquitto (${this.configFile}) ${why} on ${this.host}:${this.port}.\n` +
        `--- mosquitto.log ---\n${this.logTail(30)}\n--- stdout/stderr ---\n${this.#output.last(30).join('\n')}`,
    )
  }

  #forget(child: ChildProcess): void {
    children.delete(child)
    if (this.#child === child) {
      this.#child = undefined
      brokers.delete(this)
    }
  }
}

/** Stops every broker this module started that is still running; for afterAll hooks. */
export async function stopAllMosquittos(): Promise<void> {
  await Promise.all([...brokers].map((broker) => broker.stop()))
}

function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port })
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

/**
 * A lab PKI in `<dir>/pki` and a cloud mosquitto in `<dir>/cloud` that requires its client
 * certificates, with the `cloud:` connection fields a gateway config needs to reach it.
 */
export async function startLabCloud(
  dir: string,
  options: Partial<CloudMosquittoOptions> = {},
  /** The CN of the gateway's client certificate (consumers check it against the key binding). */
  clientCommonName?: string,
): Promise<{
  cloud: CloudMosquitto
  pki: LabPki
  link: { host: string; port: number; caFile: string; certFile: string; keyFile: string }
}> {
  const pki = await mintLabPki(join(dir, 'pki'), clientCommonName === undefined ? {} : { clientCommonName })
  await mkdir(join(dir, 'cloud'), { mode: 0o700 })
  const cloud = await CloudMosquitto.start({
    dir: join(dir, 'cloud'),
    caFile: pki.caFile,
    certFile: pki.serverCertFile,
    keyFile: pki.serverKeyFile,
    ...options,
  })
  return {
    cloud,
    pki,
    link: {
      host: '127.0.0.1',
      port: cloud.port,
      caFile: pki.caFile,
      certFile: pki.clientCertFile,
      keyFile: pki.clientKeyFile,
    },
  }
}
