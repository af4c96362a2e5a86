import { type ChildProcess, spawn } from 'node:child_process'
import { findBinary, MOSQUITTO_INSTALL_HINT } from './binaries.js'
import { readEnvelopeUnverified, type UnverifiedEnvelope } from './envelope.js'
import { connectionArgs, type MosquittoClientConnection } from './mosquitto-args.js'
import { parseSubLine, SUB_FORMAT } from './mosquitto-sub-output.js'
import { type Exit, hasExited, killOnExit, LineTail, onLines, signalPid, terminate } from './processes.js'

export interface MosquittoSubOptions extends MosquittoClientConnection {
  /** One topic filter (`#` for everything); more with `extraArgs: ['-t', ...]`. */
  topic: string
  /** false adds `-c` (persistent session) and then needs `clientId`. Default true. */
  cleanSession?: boolean
  /** Appended to argv as is. */
  extraArgs?: string[]
  /** How long `start` waits for the SUBACK; default 10 000 ms. */
  readyTimeoutMs?: number
}

export interface SubMessage {
  topic: string
  qos: number
  /**
   * The payload decoded as UTF-8; for a gateway envelope, its body (see
   * `envelopes` for its sequence number, `rawMessages` for the exact bytes).
   */
  payload: string
}

export interface RawSubMessage {
  topic: string
  qos: number
  payload: Buffer
}

const children = new Set<ChildProcess>()
const subs = new Set<MosquittoSub>()
killOnExit(children)

/**
 * The real `mosquitto_sub`, subscribed and ready: `start` resolves only once the
 * broker's SUBACK has granted the subscription. It runs under `stdbuf -oL`
 * because mosquitto_sub block-buffers its `-d` lines on a pipe, which would
 * hold the SUBACK line back until the first message.
 */
export class MosquittoSub {
  readonly messages: SubMessage[] = []
  readonly rawMessages: RawSubMessage[] = []
  /** Per message (same index): the gateway envelope it carried, unverified, or undefined. */
  readonly envelopes: Array<UnverifiedEnvelope | undefined> = []
  readonly topic: string
  readonly #child: ChildProcess
  readonly #output = new LineTail()
  readonly #waiters = new Set<() => void>()
  #granted: number[] | undefined
  #closed = false

  private constructor(child: ChildProcess, topic: string) {
    this.#child = child
    this.topic = topic
    onLines(child.stdout, (line) => this.#onStdout(line))
    onLines(child.stderr, (line) => this.#record(`stderr: ${line}`))
    child.once('error', (err) => this.#record(`spawn error: ${err.message}`))
    child.once('exit', () => children.delete(child))
    // 'close' comes after the last stdout line, so no message is missed.
    child.once('close', () => {
      this.#closed = true
      this.#notify()
    })
  }

  static async start(opts: MosquittoSubOptions): Promise<MosquittoSub> {
    if (opts.cleanSession === false && opts.clientId === undefined) {
      throw new Error(
        'Expected a `clientId` with `cleanSession: false`: a persistent session is keyed by client id',
      )
    }
    const [stdbuf, binary] = await Promise.all([
      findBinary('stdbuf', 'install it with `apt-get install coreutils`'),
      findBinary('mosquitto_sub', MOSQUITTO_INSTALL_HINT),
    ])
    const args = [
      '-oL',
      binary,
      '-d',
      '-F',
      SUB_FORMAT,
      ...connectionArgs(opts),
      '-t',
      opts.topic,
      ...(opts.cleanSession === false ? ['-c'] : []),
      ...(opts.extraArgs ?? []),
    ]
    // stdbuf execs mosquitto_sub, so the PID is mosquitto_sub's own.
    const child = spawn(stdbuf, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    children.add(child)
    const sub = new MosquittoSub(child, opts.topic)
    subs.add(sub)
    try {
      await sub.#subscribed(opts.readyTimeoutMs ?? 10_000)
    } catch (err) {
      await sub.stop()
      throw err
    }
    return sub
  }

  get pid(): number | undefined {
    return hasExited(this.#child) ? undefined : this.#child.pid
  }

  /**
   * Resolves with all messages so far once at least `count` have arrived;
   * rejects after `timeoutMs`, or as soon as mosquitto_sub exits, listing what
   * did arrive.
   */
  waitFor(count: number, timeoutMs = 10_000): Promise<SubMessage[]> {
    return this.#until(
      () => this.messages.length >= count,
      timeoutMs,
      () => `Expected ${count} message(s) on \`${this.topic}\``,
      () => this.#describeMessages(),
    ).then(() => [...this.messages])
  }

  /** SIGTERM by PID (mosquitto_sub then sends DISCONNECT) and wait for the exit. */
  async stop(): Promise<Exit> {
    const exit = await terminate(this.#child)
    subs.delete(this)
    return exit
  }

  /** Sends `signal` by PID; SIGKILL drops the connection with no DISCONNECT. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    signalPid(this.pid, signal)
  }

  /** The last `lines` lines mosquitto_sub printed (debug, messages, stderr). */
  outputTail(lines = 30): string {
    return this.#output.last(lines).join('\n')
  }

  async #subscribed(timeoutMs: number): Promise<void> {
    await this.#until(
      () => this.#granted !== undefined,
      timeoutMs,
      () => `Expected mosquitto_sub to get a SUBACK for \`${this.topic}\``,
      () => '',
    )
    const granted = this.#granted ?? []
    if (granted.some((code) => code >= 0x80)) {
      throw new Error(
        `Expected the broker to grant \`${this.topic}\`, got SUBACK codes ${granted.join(', ')}`,
      )
    }
  }

  #until(done: () => boolean, timeoutMs: number, expected: () => string, got: () => string): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (done()) finish()
        else if (this.#closed) finish(`mosquitto_sub exited (code ${this.#child.exitCode})`)
      }
      const finish = (failure?: string) => {
        clearTimeout(timer)
        this.#waiters.delete(check)
        if (failure === undefined) resolve()
        else
          reject(
            new Error(
              `${expected()}; ${failure}.${got()}\n--- mosquitto_sub output ---\n${this.outputTail()}`,
            ),
          )
      }
      const timer = setTimeout(() => finish(`timed out after ${timeoutMs} ms`), timeoutMs)
      this.#waiters.add(check)
      check()
    })
  }

  #describeMessages(): string {
    return ` Got ${this.messages.length}:${this.messages.map((m) => `\n  ${JSON.stringify(m)}`).join('')}`
  }

  #onStdout(line: string): void {
    this.#record(line)
    const parsed = parseSubLine(line)
    if (parsed.kind === 'message') {
      this.rawMessages.push({ topic: parsed.topic, qos: parsed.qos, payload: parsed.payload })
      const envelope = readEnvelopeUnverified(parsed.payload)
      this.envelopes.push(envelope)
      const body = envelope?.body ?? parsed.payload
      this.messages.push({ topic: parsed.topic, qos: parsed.qos, payload: body.toString('utf8') })
    } else if (parsed.kind === 'subscribed') {
      this.#granted ??= parsed.granted
    }
    this.#notify()
  }

  #record(line: string): void {
    this.#output.push(line)
  }

  #notify(): void {
    for (const waiter of [...this.#waiters]) waiter()
  }
}

/** Stops every MosquittoSub still running; for afterAll hooks. */
export async function stopAllMosquittoSubs(): Promise<void> {
  await Promise.all([...subs].map((sub) => sub.stop()))
}
