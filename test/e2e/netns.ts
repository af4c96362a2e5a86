/**
 * Network namespaces for end-to-end tests: make them, join them with veth pairs, run commands and
 * long-running processes inside them, and remove everything afterwards. Every name carries this
 * process's PID and a random tag, and only what a lab created is ever touched; the host's
 * interfaces and routes are not. Commands go through `vpn/run.ts`, the project's one seam.
 */
import { randomBytes } from 'node:crypto'
import { constants } from 'node:fs'
import { access, readFile } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { VpnError } from '../../vpn/errors.js'
import {
  type Daemon,
  type DaemonExit,
  type RunOptions,
  type RunResult,
  run,
  spawnDaemon,
} from '../../vpn/run.js'

/** The Debian package of each tool the end-to-end tests use. */
export const LAB_PACKAGES: Readonly<Record<string, { versionArgs: string[]; debianPackage: string }>> = {
  ip: { versionArgs: ['-V'], debianPackage: 'iproute2' },
  wg: { versionArgs: ['--version'], debianPackage: 'wireguard-tools' },
  'wireguard-go': { versionArgs: ['--version'], debianPackage: 'wireguard-go' },
  tcpdump: { versionArgs: ['--version'], debianPackage: 'tcpdump' },
  setpriv: { versionArgs: ['--version'], debianPackage: 'util-linux' },
  ss: { versionArgs: ['-V'], debianPackage: 'iproute2' },
}

const CAP_NET_ADMIN = 12
const CAP_SYS_ADMIN = 21

/** Effective capabilities of this process, from /proc/self/status. */
async function effectiveCaps(): Promise<bigint> {
  const status = await readFile('/proc/self/status', 'utf8')
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1]
  return hex === undefined ? 0n : BigInt(`0x${hex}`)
}

/**
 * Throws, naming what is missing, unless this process can run the lab: CAP_NET_ADMIN and
 * CAP_SYS_ADMIN (network namespaces, interfaces), /dev/net/tun (wireguard-go), and `tools`.
 * End-to-end tests call it first, so that a machine without them fails the test instead of
 * skipping it.
 */
export async function requireLab(tools: readonly string[] = ['ip', 'wg', 'wireguard-go']): Promise<void> {
  const caps = await effectiveCaps()
  const lacking = [
    ...((caps >> BigInt(CAP_NET_ADMIN)) & 1n ? [] : ['CAP_NET_ADMIN']),
    ...((caps >> BigInt(CAP_SYS_ADMIN)) & 1n ? [] : ['CAP_SYS_ADMIN']),
  ]
  if (lacking.length > 0) {
    throw new Error(
      `The end-to-end tunnel tests need CAP_NET_ADMIN and CAP_SYS_ADMIN (to create network namespaces and interfaces); this process lacks ${lacking.join(' and ')}. Run them as root (CI runs .ci/run as root).`,
    )
  }
  try {
    await access('/dev/net/tun', constants.R_OK | constants.W_OK)
  } catch {
    throw new Error(
      'The end-to-end tunnel tests need /dev/net/tun (wireguard-go creates its interface through it): load the tun module (modprobe tun), or give the container --device /dev/net/tun.',
    )
  }
  for (const tool of tools) {
    const known = LAB_PACKAGES[tool]
    try {
      await run(tool, known?.versionArgs ?? ['--version'], { timeoutMs: 5000 })
    } catch (err) {
      if (err instanceof VpnError && err.code.endsWith('_NOT_FOUND')) {
        const pkg = known?.debianPackage
        throw new Error(
          `The end-to-end tunnel tests need \`${tool}\`${pkg === undefined ? '' : `: install the Debian package ${pkg} (apt-get install ${pkg})`}`,
          { cause: err },
        )
      }
      throw err
    }
  }
}

/** A process running inside a namespace, started by a lab. */
export class LabProcess {
  readonly #lines: string[] = []
  /** Output lines kept (the oldest are dropped beyond it). */
  readonly #maxLines: number
  readonly #waiters = new Set<() => void>()
  daemon!: Daemon

  constructor(maxLines = 1000) {
    this.#maxLines = maxLines
  }

  /** @internal */
  onLine(line: string): void {
    this.#lines.push(line)
    if (this.#lines.length > this.#maxLines) this.#lines.shift()
    for (const wake of this.#waiters) wake()
  }

  get pid(): number {
    return this.daemon.pid
  }

  lines(): string[] {
    return [...this.#lines]
  }

  /** Resolves with the first output line matching `pattern`; rejects on exit or after `timeoutMs`. */
  async waitForLine(pattern: RegExp, timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const found = this.#lines.find((line) => pattern.test(line))
      if (found !== undefined) return found
      if (this.daemon.hasExited()) {
        throw new Error(
          `${this.daemon.commandLine} exited before printing ${pattern}: ${this.#lines.slice(-5).join(' | ')}`,
        )
      }
      if (Date.now() >= deadline) {
        throw new Error(
          `${this.daemon.commandLine} printed no line matching ${pattern} within ${timeoutMs} ms`,
        )
      }
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.#waiters.delete(wake)
          clearTimeout(timer)
          resolve()
        }
        const timer = setTimeout(wake, 50)
        this.#waiters.add(wake)
      })
    }
  }

  signal(signal: NodeJS.Signals): void {
    this.daemon.signal(signal)
  }

  /** SIGTERM by PID, SIGKILL after `graceMs`. */
  stop(graceMs = 5000): Promise<DaemonExit> {
    return this.daemon.stop(graceMs)
  }
}

export interface VethEnd {
  ns: string
  name: string
  /** `10.77.0.1/30` */
  address: string
  mac: string
}

/** A veth pair between two namespaces; `setUp` cuts or restores one end. */
export class VethPair {
  constructor(
    readonly a: VethEnd,
    readonly b: VethEnd,
    private readonly staticNeighbours: boolean,
  ) {}

  /** Sets one end up or down. Bringing it up re-adds its static neighbour (link down flushes it). */
  async setUp(side: 'a' | 'b', up: boolean): Promise<void> {
    const [self, other] = side === 'a' ? [this.a, this.b] : [this.b, this.a]
    await ipIn(self.ns, ['link', 'set', 'dev', self.name, up ? 'up' : 'down'])
    if (up && this.staticNeighbours) await addNeighbour(self, other)
  }
}

function hostOf(cidr: string): string {
  return cidr.split('/')[0] ?? cidr
}

async function ipIn(ns: string, args: string[]): Promise<RunResult> {
  return run('ip', ['-n', ns, ...args])
}

async function addNeighbour(self: VethEnd, other: VethEnd): Promise<void> {
  await ipIn(self.ns, [
    'neigh',
    'replace',
    hostOf(other.address),
    'lladdr',
    other.mac,
    'dev',
    self.name,
    'nud',
    'permanent',
  ])
}

async function macOf(ns: string, name: string): Promise<string> {
  const { stdout } = await ipIn(ns, ['-j', 'link', 'show', 'dev', name])
  const [link] = JSON.parse(stdout) as Array<{ address?: string }>
  if (link?.address === undefined) throw new Error(`No MAC address on ${name} in ${ns}`)
  return link.address
}

/**
 * One test's namespaces, veths and processes. `cleanup()` (call it in afterAll) stops every
 * process it started, then any process still inside its namespaces (all started by the test,
 * directly or through `vpn/`), then deletes the namespaces, which deletes their interfaces.
 */
export class NetnsLab {
  /** Base 36 PID and a random tag: unique per run, short enough for 15-character interface names. */
  readonly id = `${process.pid.toString(36)}${randomBytes(2).toString('hex').slice(0, 3)}`
  readonly #namespaces: string[] = []
  readonly #processes = new Set<LabProcess>()
  #counter = 0

  /** A unique interface name: `tag` (1 to 4 characters), the lab id, a counter. */
  name(tag: string): string {
    const name = `${tag}${this.id}${(this.#counter++).toString(36)}`
    if (name.length > 15)
      throw new Error(`Interface name ${name} is longer than 15 characters; use a shorter tag`)
    return name
  }

  /** Creates a namespace (`eg-<tag>-<id>`) with its loopback up. */
  async addNamespace(tag: string): Promise<string> {
    const ns = `eg-${tag}-${this.id}`
    await run('ip', ['netns', 'add', ns])
    this.#namespaces.push(ns)
    await ipIn(ns, ['link', 'set', 'dev', 'lo', 'up'])
    return ns
  }

  /**
   * Joins two namespaces with a veth pair made directly inside them (it never appears in the
   * host's namespace), with the given addresses. IPv6 is off on both ends; with
   * `staticNeighbours`, ARP is off too and each end knows the other's MAC, so the link carries
   * nothing the test did not send.
   */
  async addVethPair(
    a: { ns: string; address: string },
    b: { ns: string; address: string },
    options: { staticNeighbours?: boolean } = {},
  ): Promise<VethPair> {
    const nameA = this.name('va')
    const nameB = this.name('vb')
    await run('ip', [
      'link',
      'add',
      nameA,
      'netns',
      a.ns,
      'type',
      'veth',
      'peer',
      'name',
      nameB,
      'netns',
      b.ns,
    ])
    const ends: VethEnd[] = []
    for (const [end, name] of [
      [a, nameA],
      [b, nameB],
    ] as const) {
      await this.disableIpv6(end.ns, name)
      await ipIn(end.ns, ['address', 'add', end.address, 'dev', name])
      if (options.staticNeighbours) await ipIn(end.ns, ['link', 'set', 'dev', name, 'arp', 'off'])
      ends.push({ ns: end.ns, name, address: end.address, mac: await macOf(end.ns, name) })
    }
    const pair = new VethPair(ends[0]!, ends[1]!, options.staticNeighbours ?? false)
    await pair.setUp('a', true)
    await pair.setUp('b', true)
    return pair
  }

  /** Writes /proc/sys/net/ipv6/conf/<name>/disable_ipv6 from inside the namespace (no-op without IPv6). */
  async disableIpv6(ns: string, name: string): Promise<void> {
    const script =
      'const fs = require("fs"); const p = "/proc/sys/net/ipv6/conf/" + process.argv[1] + "/disable_ipv6"; if (fs.existsSync(p)) fs.writeFileSync(p, "1")'
    await this.exec(ns, process.execPath, ['-e', script, name])
  }

  /** Runs a command inside `ns` (through `ip netns exec`) and returns its output. */
  exec(
    ns: string,
    cmd: string,
    args: readonly string[],
    options: Omit<RunOptions, 'netns'> = {},
  ): Promise<RunResult> {
    return run(cmd, args, { ...options, netns: ns })
  }

  /** Starts a long-running process inside `ns`; `cleanup()` stops it if the test does not. */
  async spawn(
    ns: string,
    cmd: string,
    args: readonly string[],
    options: { env?: Readonly<Record<string, string>>; maxLines?: number } = {},
  ): Promise<LabProcess> {
    const { maxLines, ...daemonOptions } = options
    const proc = new LabProcess(maxLines)
    proc.daemon = await spawnDaemon(cmd, args, {
      ...daemonOptions,
      netns: ns,
      onLine: (line) => proc.onLine(line),
    })
    this.#processes.add(proc)
    return proc
  }

  /** Tries every step even if one fails; throws at the end if any did. Safe to call twice. */
  async cleanup(): Promise<void> {
    const errors: unknown[] = []
    for (const proc of this.#processes) {
      await proc.stop(3000).catch((err: unknown) => errors.push(err))
    }
    this.#processes.clear()
    for (const ns of this.#namespaces.splice(0).reverse()) {
      try {
        await this.#stopLeftovers(ns)
        await run('ip', ['netns', 'del', ns])
      } catch (err) {
        errors.push(err)
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, `Lab ${this.id} cleanup failed`)
  }

  /** PIDs of the processes inside `ns` (asked from outside it, so the asking `ip` is not one of them). */
  async pids(ns: string): Promise<number[]> {
    const { stdout } = await run('ip', ['netns', 'pids', ns])
    return stdout
      .split('\n')
      .filter((p) => /^\d+$/.test(p))
      .map(Number)
      .filter((pid) => pid !== process.pid)
  }

  /** Stops, by PID, processes still inside `ns` (a wireguard-go the code under test failed to stop). */
  async #stopLeftovers(ns: string): Promise<void> {
    const pids = () => this.pids(ns)
    let left = await pids()
    if (left.length === 0) return
    for (const pid of left) signal(pid, 'SIGTERM')
    for (let i = 0; i < 60 && left.length > 0; i++) {
      await sleep(50)
      left = await pids()
    }
    for (const pid of left) signal(pid, 'SIGKILL')
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err
  }
}
