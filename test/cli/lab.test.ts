import { type ChildProcess, spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { canListen, threeFreePorts } from '../helpers/ports.js'
import { exitOf, hasExited, onLines, signalPid, terminate } from '../helpers/processes.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { assertBuilt, spawnCli } from './run-cli.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

describe('edge-gateway lab', () => {
  let dir: string | undefined

  afterAll(async () => {
    if (dir) await removeDir(dir)
  })

  it('starts on loopback and prints messages arriving at the cloud side (within 30 s even on a loaded machine)', async () => {
    dir = await makeTempDir('edge-gw-lab-')
    let base = 0
    let started = 0
    let child!: ReturnType<typeof spawnCli>
    let lines: string[] = []
    let stderr: string[] = []
    let firstArrivalMs: number | undefined
    // Three free ports are looked up, then bound by the lab: another process (a test suite running
    // beside this one) can take one in between. Such a start (EADDRINUSE) is tried again on others.
    for (let attempt = 1; attempt <= 3; attempt++) {
      base = await threeFreePorts()
      started = Date.now()
      const stateDir = join(dir, `attempt-${attempt}`)
      child = spawnCli(['lab', '--state-dir', stateDir, '--base-port', String(base), '--duration', '60'])
      const out: string[] = []
      const err: string[] = []
      lines = out
      stderr = err
      onLines(child.stdout, (line) => {
        out.push(line)
        if (firstArrivalMs === undefined && line.startsWith('cloud <- gateways/'))
          firstArrivalMs = Date.now() - started
      })
      onLines(child.stderr, (line) => err.push(line))
      // About 2 s on an idle 2-core machine; over 10 s seen with two test suites running at once.
      const deadline = started + 30_000
      while (firstArrivalMs === undefined && Date.now() < deadline && child.exitCode === null) {
        await new Promise((r) => setTimeout(r, 50))
      }
      if (firstArrivalMs !== undefined || child.exitCode === null) break
      await exitOf(child)
      if (!err.some((l) => l.includes('EADDRINUSE'))) break
    }
    try {
      const context = `stdout:\n${lines.join('\n')}\nstderr:\n${stderr.join('\n')}`
      expect(firstArrivalMs, context).toBeDefined()
      expect(firstArrivalMs!, context).toBeLessThanOrEqual(30_000)
      const output = lines.join('\n')
      expect(output).toContain(`LAN TLS-PSK:                   127.0.0.1:${base + 1}`)
      expect(output).toContain('VPN: off in lab mode')
      expect(output).toMatch(
        /mosquitto_pub -h 127\.0\.0\.1 -p \d+ --psk [0-9a-f]{32} --psk-identity lab-psk /,
      )
      expect(output).toMatch(/^cloud <- gateways\/lab\/devices\/lab-(psk|pass)\/telemetry \{"n":1,/m)
      // The embedded cloud checked the gateway's key binding and the signature of each message.
      expect(output).toMatch(
        /^cloud <- \$gw\/lab\/binding: key binding for gateway lab verified against the lab CA$/m,
      )
      expect(output).toMatch(/signature verified, device lab-(psk|pass), gw-seq \d+\)$/m)
      expect(output).not.toMatch(/REFUSED/)
    } finally {
      const exit = await terminate(child)
      // Ctrl-C (SIGTERM here) stops it cleanly (checked only when the lab came up: a SIGTERM
      // during start-up ends it by the signal, and would hide the failure above).
      if (firstArrivalMs !== undefined) {
        expect(exit.code).toBe(0)
        expect(lines.at(-1)).toBe('edge-gateway lab: stopped')
      }
    }
  })
})

/** The part of /proc/<pid>/stat after the command name: state, ppid, ... (null when the process is gone). */
function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  } catch {
    return null
  }
}

/** `root` and every process below it, from the parent links in /proc. */
function processTree(root: number): number[] {
  const children = new Map<number, number[]>()
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const ppid = Number(statFields(Number(name))?.[1])
    if (!children.has(ppid)) children.set(ppid, [])
    children.get(ppid)!.push(Number(name))
  }
  const tree = [root]
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]!) ?? []))
  return tree
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim()
  } catch {
    return ''
  }
}

const running = (pid: number) => {
  const state = statFields(pid)?.[0]
  return state !== undefined && state !== 'Z'
}

async function until(done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
}

/**
 * `npm run lab` as a supervisor (or a script) runs it: npm in a process group of
 * its own, signals sent to npm's PID, or to the whole group as a terminal's
 * Ctrl-C does. `--ignore-scripts` leaves out the `prelab` build, which would
 * rewrite dist/ under the other test files.
 */
describe('npm run lab under a supervisor', () => {
  const dirs: string[] = []
  const started = new Set<number>()

  afterAll(async () => {
    // Anything of the lab still running (a failed test) is stopped by PID.
    for (const pid of started) if (running(pid)) signalPid(pid, 'SIGKILL')
    for (const dir of dirs) await removeDir(dir)
  })

  async function runAndSignal(send: (npm: ChildProcess) => void, attempt = 1): Promise<void> {
    assertBuilt()
    const dir = await makeTempDir('edge-gw-npm-lab-')
    dirs.push(dir)
    const base = await threeFreePorts()
    const npm = spawn(
      'npm',
      [
        'run',
        'lab',
        '--ignore-scripts',
        '--',
        '--state-dir',
        join(dir, 'state'),
        '--base-port',
        String(base),
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    )
    started.add(npm.pid!)
    // 'exit' can come before the last output is read: 'close' comes when stdout and stderr have ended.
    let outputEnded = false
    npm.once('close', () => {
      outputEnded = true
    })
    const lines: string[] = []
    const stderr: string[] = []
    onLines(npm.stdout, (line) => lines.push(line))
    onLines(npm.stderr, (line) => stderr.push(line))
    const context = () => `stdout:\n${lines.join('\n')}\nstderr:\n${stderr.join('\n')}`
    try {
      await until(() => lines.includes('messages arriving at the cloud side:') || hasExited(npm), 60_000)
      // A port taken by another process between the look-up and the bind: tried again on others.
      if (hasExited(npm) && attempt < 3 && stderr.some((l) => l.includes('EADDRINUSE'))) {
        await exitOf(npm)
        return runAndSignal(send, attempt + 1)
      }
      expect(lines, context()).toContain('messages arriving at the cloud side:')
      const tree = processTree(npm.pid!)
      for (const pid of tree) started.add(pid)
      const commands = tree.map(commandLine)
      // The lab's node process is under npm (the tree is what must be gone after the signal).
      expect(
        commands.some((c) =>
          /^(\S*\/)?node --max-semi-space-size=2 dist\/bin\/edge-gateway\.js lab /.test(c),
        ),
        `${commands.join('\n')}\n${context()}`,
      ).toBe(true)
      expect(await canListen(base)).toBe(false)

      send(npm)
      await until(() => hasExited(npm), 30_000)
      expect(hasExited(npm), `npm still running 30 s after the signal\n${context()}`).toBe(true)
      await until(() => outputEnded, 10_000)
      // Every process npm started is gone with it: none is left holding the ports.
      expect(tree.filter(running).map(commandLine), context()).toEqual([])
      expect([await canListen(base), await canListen(base + 1), await canListen(base + 2)]).toEqual([
        true,
        true,
        true,
      ])
      // The lab stopped cleanly (devices, gateway, cloud broker closed), and npm reports success.
      expect(lines.at(-1), context()).toBe('edge-gateway lab: stopped')
      expect(npm.exitCode, context()).toBe(0)
    } finally {
      if (!hasExited(npm)) await terminate(npm)
    }
  }

  it('SIGTERM to the npm process stops the lab and every process under npm', async () => {
    await runAndSignal((npm) => signalPid(npm.pid, 'SIGTERM'))
  }, 120_000)

  it('SIGINT to the npm process stops the lab and every process under npm', async () => {
    await runAndSignal((npm) => signalPid(npm.pid, 'SIGINT'))
  }, 120_000)

  it('Ctrl-C (SIGINT to the whole process group) stops it cleanly, although the lab gets it twice', async () => {
    await runAndSignal((npm) => process.kill(-npm.pid!, 'SIGINT'))
  }, 120_000)
})
